// Wallets: EIP-6963 discovery (every injected wallet announces itself), a plain EIP-1193
// `window.ethereum` fallback, switching to (or adding) the service's chain, Sign-In with
// Ethereum against the API's /auth flow, and the ethers v6 signer the other pages use.
import { BrowserProvider, getAddress, verifyTypedData } from "/web/vendor/ethers.min.js";
import { get, post, saveSession, session } from "/web/api.js";
import { typedDataForEthers } from "/web/typed-data.js";

const discovered = new Map(); // uuid -> {info, provider}
let chosen = null; // {info, provider}
let configPromise = null;

window.addEventListener("eip6963:announceProvider", (event) => {
  const detail = event.detail;
  if (detail?.info?.uuid && detail.provider) {
    discovered.set(detail.info.uuid, detail);
    window.dispatchEvent(new CustomEvent("fairtix:wallets"));
  }
});
window.dispatchEvent(new Event("eip6963:requestProvider"));

export function siteConfig() {
  configPromise ??= get("/web/config", { auth: false });
  return configPromise;
}

// The wallets on offer: those that announced themselves, or window.ethereum when none did.
export function wallets() {
  const list = [...discovered.values()];
  if (!list.length && window.ethereum) {
    list.push({ info: { uuid: "injected", name: "Browser wallet", icon: null, rdns: "injected" }, provider: window.ethereum });
  }
  return list;
}

const CHOSEN_KEY = "fairtix.wallet";

function restoreChoice() {
  if (chosen) return chosen;
  const rdns = localStorage.getItem(CHOSEN_KEY);
  const list = wallets();
  chosen = list.find((w) => w.info.rdns === rdns) || (list.length === 1 ? list[0] : null);
  return chosen;
}

export function currentWallet() { return restoreChoice(); }

async function ensureChain(provider) {
  const config = await siteConfig();
  const want = `0x${Number(config.chain_id).toString(16)}`;
  const have = await provider.request({ method: "eth_chainId" });
  if (BigInt(have) === BigInt(want)) return;
  try {
    await provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId: want }] });
  } catch (error) {
    // 4902: the wallet doesn't know the chain. Offer it, if this deployment has a public RPC.
    if (error?.code !== 4902 || !config.rpc_url) throw error;
    await provider.request({
      method: "wallet_addEthereumChain",
      params: [{
        chainId: want,
        chainName: config.chain_name,
        rpcUrls: [config.rpc_url],
        nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      }],
    });
  }
}

export async function connect(wallet) {
  chosen = wallet;
  localStorage.setItem(CHOSEN_KEY, wallet.info.rdns);
  const accounts = await wallet.provider.request({ method: "eth_requestAccounts" });
  if (!accounts?.length) throw new Error("Your wallet shared no account.");
  await ensureChain(wallet.provider);
  return getAddress(accounts[0]);
}

// The ethers signer for the signed-in wallet, on the right chain.
export async function signer() {
  const wallet = restoreChoice();
  if (!wallet) throw new Error("Connect a wallet first.");
  await ensureChain(wallet.provider);
  const provider = new BrowserProvider(wallet.provider);
  const current = session();
  return provider.getSigner(current ? current.address : undefined);
}

// EIP-4361, written as the API's nonce answer says (domain, URI, chain id, statement).
export function siweMessage(address, info, now = new Date()) {
  const expires = new Date(now.getTime() + 3600 * 1000);
  return [
    `${info.domain} wants you to sign in with your Ethereum account:`,
    address,
    "",
    info.statement,
    "",
    `URI: ${info.uri}`,
    `Version: ${info.version}`,
    `Chain ID: ${info.chain_id}`,
    `Nonce: ${info.nonce}`,
    `Issued At: ${now.toISOString()}`,
    `Expiration Time: ${expires.toISOString()}`,
  ].join("\n");
}

export async function signIn(wallet) {
  const address = await connect(wallet);
  const info = await post("/auth/nonce", undefined, { auth: false });
  const message = siweMessage(address, info);
  const ethersSigner = await new BrowserProvider(wallet.provider).getSigner(address);
  const signature = await ethersSigner.signMessage(message); // personal_sign
  const result = await post("/auth/verify", { message, signature }, { auth: false });
  const me = await get("/auth/me", { headers: { Authorization: `Bearer ${result.token}` }, auth: false });
  saveSession({ ...result, roles: me.roles });
  return result;
}

export async function signOut() {
  try { await post("/auth/logout"); } catch { /* the token is forgotten here either way */ }
  saveSession(null);
}

// Signs the API's EIP-712 document with ethers (typed-data.js says why EIP712Domain goes first).
export async function signTypedData(typedData) {
  const s = await signer();
  const { domain, types, message } = typedDataForEthers(typedData);
  const signature = await s.signTypedData(domain, types, message);
  // Check it locally before sending it anywhere: a wallet that signed something else is caught here.
  const recovered = verifyTypedData(domain, types, message, signature);
  if (getAddress(recovered) !== getAddress(await s.getAddress())) {
    throw new Error("Your wallet's signature doesn't match your address.");
  }
  return signature;
}

// Sends an unsigned transaction from the API ({to, data, value, chainId}); returns its hash.
export async function sendTransaction(tx) {
  const s = await signer();
  const sent = await s.sendTransaction({ to: tx.to, data: tx.data, value: BigInt(tx.value) });
  return sent;
}
