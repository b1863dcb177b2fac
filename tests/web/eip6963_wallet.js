// A test wallet, injected before the site's scripts: an EIP-1193 provider announced over EIP-6963
// that forwards every JSON-RPC call to anvil through the test's binding (window.__fairtixWallet),
// where anvil's unlocked account signs for real (personal_sign, eth_signTypedData_v4,
// eth_sendTransaction). The address is the test's, filled in below.
(() => {
  const address = "__ADDRESS__";
  const listeners = {};
  const rpcError = (message, code) => Object.assign(new Error(message), { code });
  const provider = {
    async request({ method, params }) {
      if (method === "eth_requestAccounts" || method === "eth_accounts") return [address];
      if (method === "wallet_switchEthereumChain") {
        const have = await provider.request({ method: "eth_chainId" });
        if (BigInt(params[0].chainId) === BigInt(have)) return null;
        throw rpcError("Unrecognized chain ID", 4902);
      }
      const answer = await window.__fairtixWallet(method, params || []);
      if (answer.error) throw Object.assign(rpcError(answer.error.message, answer.error.code), { data: answer.error.data });
      return answer.result;
    },
    on(event, fn) { (listeners[event] ||= []).push(fn); return provider; },
    removeListener(event, fn) { listeners[event] = (listeners[event] || []).filter((f) => f !== fn); return provider; },
  };
  const info = Object.freeze({
    uuid: "5b0b3a4e-3c1f-4a5e-9a55-0f6d7c1e2b11",
    name: "Test wallet",
    icon: "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 8 8'%3E%3Crect width='8' height='8' fill='%23f0a400'/%3E%3C/svg%3E",
    rdns: "dev.fairtix.testwallet",
  });
  const announce = () => window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail: Object.freeze({ info, provider }) }));
  window.addEventListener("eip6963:requestProvider", announce);
  announce();
})();
