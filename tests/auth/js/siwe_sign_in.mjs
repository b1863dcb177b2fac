// Writes and signs a Sign-In with Ethereum message as a new user's dApp would: the `siwe` (v3)
// package builds the text from the nonce answer, an `ethers` (v6) wallet signs it.
// stdin: {"nonce_info": <POST /auth/nonce answer>, "private_key": "0x...", "resources": [...]}
// stdout: {"message": "...", "signature": "0x..."}
import { SiweMessage } from "siwe";
import { Wallet } from "ethers";

const input = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (chunk) => (text += chunk));
  process.stdin.on("end", () => resolve(text));
}));
const info = input.nonce_info;
const wallet = new Wallet(input.private_key);
const now = new Date();
const fields = {
  domain: info.domain,
  address: wallet.address,
  statement: info.statement,
  uri: info.uri,
  version: "1",
  chainId: Number(info.chain_id),
  nonce: info.nonce,
  issuedAt: now.toISOString(),
  expirationTime: new Date(now.getTime() + 3600 * 1000).toISOString(),
};
if (input.resources !== null) fields.resources = input.resources;
const message = new SiweMessage(fields).prepareMessage();
const signature = await wallet.signMessage(message);
process.stdout.write(JSON.stringify({ message, signature }));
