"""Card fulfilment: paid orders minted in batches, each transaction written ahead of its sending.

The modules, in the order a paid order meets them:

    planning   which orders go together: one event contract, up to N tickets per transaction
    sender     write-ahead: batch row, orders PAID -> MINTING and the signed transaction in one
               database transaction, then the broadcast
    tracker    every unfinished batch, every pass: receipt, rebroadcast, fee bump, lost nonce
    recording  what a batch's end does to its orders (fulfilled once, or queued again)
    nonces     the signer's nonces that unfinished batches hold, shared with ChainClient
    models     MintBatch and MintTx (each signed version of a batch's transaction)
"""
