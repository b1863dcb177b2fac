// The sign-in panel: the wallets on offer, Sign-In with Ethereum with the one chosen.
import { session } from "/web/api.js";
import { h, mount, announce, showProblem, busy } from "/web/ui.js";
import { wallets, signIn } from "/web/wallet.js";

// The wallets on offer and a button for each; signs in with the one chosen, then calls done().
export function signInPanel(done, intro = "Sign in with your Ethereum wallet to continue.") {
  const problem = h("div");
  const list = h("ul", { class: "wallet-list" });
  const fill = () => {
    const found = wallets();
    if (!found.length) {
      mount(list, h("li", {}, "No wallet found in this browser. Install a wallet extension (or open this page in your wallet's browser), then reload."));
      return;
    }
    mount(list, found.map((w) => h("li", {},
      h("button", { type: "button", onclick: async (e) => {
        const release = busy(e.currentTarget, "Check your wallet…");
        showProblem(problem, null);
        try {
          await signIn(w);
          announce("Signed in");
          release();
          await done();
        } catch (error) { release(); showProblem(problem, error); }
      } },
      w.info.icon ? h("img", { src: w.info.icon, alt: "" }) : null,
      `Sign in with ${w.info.name}`))));
  };
  fill();
  window.addEventListener("fairtix:wallets", fill);
  return h("section", { class: "card", "aria-labelledby": "signin-title" },
    h("h2", { id: "signin-title" }, "Sign in"),
    h("p", {}, intro),
    h("p", { class: "hint" }, "Your wallet asks you to sign a message (Sign-In with Ethereum). It costs nothing and sends no transaction."),
    list, problem);
}

// For pages that need a wallet: true when signed in, otherwise shows the panel and re-renders.
export function requireSignIn(main, title) {
  if (session()) return true;
  mount(main, h("h1", {}, title), signInPanel(() => window.dispatchEvent(new HashChangeEvent("hashchange"))));
  return false;
}

