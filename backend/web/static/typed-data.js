// The worked example for ethers v6 and the API's EIP-712 documents (no imports, so Node's tests
// load it as it is).
//
// The API answers `typed_data` in the form of the wallet RPC's eth_signTypedData_v4: domain,
// types, primaryType, message, with `EIP712Domain` listed in `types`. ethers derives the domain's
// type from `domain` itself, and its signTypedData / verifyTypedData / TypedDataEncoder throw
// ("ambiguous primary types or unused types") when `types` names EIP712Domain too. Delete that
// entry before handing the document to ethers: the domain's fields, and so the signature, are
// unchanged.
export function typedDataForEthers(typedData) {
  const types = { ...typedData.types };
  delete types.EIP712Domain;
  return { domain: typedData.domain, types, message: typedData.message, primaryType: typedData.primaryType };
}
