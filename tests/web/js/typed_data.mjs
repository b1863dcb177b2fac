// The web client's EIP-712 step under Node, with the same ethers v6 the browser loads: the API's
// typed_data as it is makes ethers throw; after typedDataForEthers (the site's own code) ethers
// signs it and recovers the signer.
// stdin: {"typed_data": <the API's typed_data>, "private_key": "0x..."}
// stdout: {"raw_error": "...", "signature": "0x...", "recovered": "0x..."}
import { Wallet, verifyTypedData } from "ethers";
import { typedDataForEthers } from "../../../backend/web/static/typed-data.js";

const input = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (chunk) => (text += chunk));
  process.stdin.on("end", () => resolve(text));
}));
const wallet = new Wallet(input.private_key);
const raw = input.typed_data;
let rawError = null;
try {
  await wallet.signTypedData(raw.domain, raw.types, raw.message);
} catch (error) {
  rawError = error.shortMessage || error.message;
}
const { domain, types, message } = typedDataForEthers(raw);
const signature = await wallet.signTypedData(domain, types, message);
const recovered = verifyTypedData(domain, types, message, signature);
process.stdout.write(JSON.stringify({ raw_error: rawError, signature, recovered }));
