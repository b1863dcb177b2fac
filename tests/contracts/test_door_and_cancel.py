"""Check-in, the organizer's switches (pause, transfer policy, cancel, settle), refunds, and the
collection's metadata and introspection views."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from eth_account.signers.local import LocalAccount
from web3.contract import Contract
from web3.types import TxReceipt

from backend.ipfs.cid import DAG_PB, Cid, parse_cid
from tests.contracts.protocol import (
    ETHER,
    ORGANIZER_ROLE,
    SCANNER_ROLE,
    ZERO_ADDRESS,
    EventSpec,
    Protocol,
    TierSpec,
    digest_of,
    encoded_error,
)

PRICE = ETHER // 10
REFUND_CLAIM_PERIOD = 180 * 86400
EVENT_END = EventSpec().event_end

WalletFactory = Callable[[LocalAccount], Contract]


def fee(receipt: TxReceipt) -> int:
    return int(receipt["gasUsed"] * receipt["effectiveGasPrice"])


# -- checkIn ----------------------------------------------------------------------------------


def test_check_in_marks_a_batch_used(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.mint(event, 1, [fans[0].address, fans[1].address])
    receipt = p.send(
        event.functions.checkIn([256, 257], [fans[0].address, fans[1].address]), p.scanner
    )
    assert p.logs(event, "CheckedIn", receipt) == [
        {"tokenId": 256, "owner": fans[0].address},
        {"tokenId": 257, "owner": fans[1].address},
    ]
    assert p.logs(event, "CheckInSkipped", receipt) == []
    assert p.view(event.functions.ticket(256))[1]
    assert p.view(event.functions.ticket(257))[1]


def test_check_in_of_a_ticket_resold_after_the_scan_skips_it_and_checks_in_the_rest(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.mint(event, 1, [fans[0].address, fans[1].address])
    # The door admitted fans[0] with 256; the ticket was sold to fans[2] before the batch landed.
    p.resell(event, fans[0], fans[2], 256, PRICE)
    receipt = p.send(
        event.functions.checkIn([256, 257], [fans[0].address, fans[1].address]), p.scanner
    )
    assert p.logs(event, "CheckInSkipped", receipt) == [
        {"tokenId": 256, "expected": fans[0].address, "actual": fans[2].address}
    ]
    assert p.logs(event, "CheckedIn", receipt) == [{"tokenId": 257, "owner": fans[1].address}]
    # The buyer's entry is intact: the ticket is unused and still theirs to use at the door.
    assert not p.view(event.functions.ticket(256))[1]
    receipt = p.send(event.functions.checkIn([256], [fans[2].address]), p.scanner)
    assert p.logs(event, "CheckedIn", receipt) == [{"tokenId": 256, "owner": fans[2].address}]


def test_check_in_of_a_nonexistent_ticket_skips_it(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.mint(event, 1, [fans[0].address])
    receipt = p.send(
        event.functions.checkIn([512, 256], [fans[1].address, fans[0].address]), p.scanner
    )
    assert p.logs(event, "CheckInSkipped", receipt) == [
        {"tokenId": 512, "expected": fans[1].address, "actual": ZERO_ADDRESS}
    ]
    assert p.view(event.functions.ticket(256))[1]


def test_check_in_expecting_the_zero_address_for_a_nonexistent_ticket_skips_it(
    p: Protocol, event: Contract
) -> None:
    receipt = p.send(event.functions.checkIn([512], [ZERO_ADDRESS]), p.scanner)
    assert p.logs(event, "CheckInSkipped", receipt) == [
        {"tokenId": 512, "expected": ZERO_ADDRESS, "actual": ZERO_ADDRESS}
    ]
    assert p.logs(event, "CheckedIn", receipt) == []


def test_check_in_of_a_used_ticket_leaves_it_and_checks_in_the_rest(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.mint(event, 1, [fans[0].address, fans[1].address])
    p.check_in(event, [257])
    # A retried batch: the ticket already used changes nothing and emits nothing.
    receipt = p.check_in(event, [256, 257])
    assert p.logs(event, "CheckedIn", receipt) == [{"tokenId": 256, "owner": fans[0].address}]
    assert p.logs(event, "CheckInSkipped", receipt) == []
    assert p.view(event.functions.ticket(256))[1]


def test_check_in_of_the_same_ticket_twice_in_a_batch_checks_it_in_once(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.mint(event, 1, [fans[0].address])
    receipt = p.check_in(event, [256, 256])
    assert p.logs(event, "CheckedIn", receipt) == [{"tokenId": 256, "owner": fans[0].address}]


def test_check_in_with_mismatched_lengths_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.mint(event, 1, [fans[0].address, fans[1].address])
    with p.reverts(event, "CheckInLengthMismatch", 2, 1):
        p.send(event.functions.checkIn([256, 257], [fans[0].address]), p.scanner)


def test_check_in_after_cancellation_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.mint(event, 1, [fans[0].address])
    p.send(event.functions.cancelEvent(), p.organizer)
    with p.reverts(event, "EventIsCancelled"):
        p.send(event.functions.checkIn([256], [fans[0].address]), p.scanner)


def test_check_in_by_a_non_scanner_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.mint(event, 1, [fans[0].address])
    with p.reverts(event, "AccessControlUnauthorizedAccount", p.organizer.address, SCANNER_ROLE):
        p.send(event.functions.checkIn([256], [fans[0].address]), p.organizer)


def test_check_in_by_a_newly_granted_scanner_succeeds(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.mint(event, 1, [fans[0].address])
    p.send(event.functions.grantRole(SCANNER_ROLE, fans[3].address), p.admin)
    p.send(event.functions.checkIn([256], [fans[0].address]), fans[3])
    assert p.view(event.functions.ticket(256))[1]


# -- pause, transfer policy -------------------------------------------------------------------


def test_pause_and_unpause_flip_the_paused_flag(p: Protocol, event: Contract) -> None:
    receipt = p.send(event.functions.pause(), p.organizer)
    assert p.logs(event, "SalesPaused", receipt) == [{"by": p.organizer.address}]
    assert p.view(event.functions.eventInfo())[8]
    receipt = p.send(event.functions.unpause(), p.organizer)
    assert p.logs(event, "SalesResumed", receipt) == [{"by": p.organizer.address}]
    assert not p.view(event.functions.eventInfo())[8]


@pytest.mark.parametrize("switch", ["pause", "unpause", "cancelEvent", "settle"])
def test_organizer_switches_by_a_non_organizer_revert(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...], switch: str
) -> None:
    with p.reverts(event, "AccessControlUnauthorizedAccount", fans[0].address, ORGANIZER_ROLE):
        p.send(event.functions[switch](), fans[0])


def test_set_transfers_locked_toggles_the_policy(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.mint(event, 1, [fans[0].address])
    receipt = p.send(event.functions.setTransfersLocked(True), p.organizer)
    assert p.logs(event, "TransferPolicyChanged", receipt) == [{"locked": True}]
    assert p.view(event.functions.eventInfo())[11]
    with p.reverts(event, "TransfersLocked", 256):
        p.send(event.functions.transferFrom(fans[0].address, fans[1].address, 256), fans[0])
    receipt = p.send(event.functions.setTransfersLocked(False), p.organizer)
    assert p.logs(event, "TransferPolicyChanged", receipt) == [{"locked": False}]
    p.send(event.functions.transferFrom(fans[0].address, fans[1].address, 256), fans[0])
    assert p.view(event.functions.ownerOf(256)) == fans[1].address


def test_set_transfers_locked_by_a_non_organizer_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(event, "AccessControlUnauthorizedAccount", fans[0].address, ORGANIZER_ROLE):
        p.send(event.functions.setTransfersLocked(True), fans[0])


# -- cancelEvent and claimRefund ---------------------------------------------------------------


def test_cancel_event_stops_transfers(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.mint(event, 1, [fans[0].address])
    receipt = p.send(event.functions.cancelEvent(), p.organizer)
    assert len(p.logs(event, "EventCancelled", receipt)) == 1
    assert p.view(event.functions.eventInfo())[9]
    with p.reverts(event, "EventIsCancelled"):
        p.send(event.functions.transferFrom(fans[0].address, fans[1].address, 256), fans[0])


def test_cancel_event_twice_reverts(p: Protocol, event: Contract) -> None:
    p.send(event.functions.cancelEvent(), p.organizer)
    with p.reverts(event, "EventIsCancelled"):
        p.send(event.functions.cancelEvent(), p.organizer)


def test_cancel_event_after_settlement_reverts(p: Protocol, event: Contract) -> None:
    p.travel_to(EVENT_END)
    p.send(event.functions.settle(), p.organizer)
    with p.reverts(event, "EventAlreadySettled"):
        p.send(event.functions.cancelEvent(), p.organizer)


def test_cancel_event_once_it_has_ended_reverts(p: Protocol, event: Contract) -> None:
    p.travel_to(EVENT_END)
    with p.reverts(event, "EventEnded", EVENT_END):
        p.send(event.functions.cancelEvent(), p.organizer)
    # Settlement is what an ended event gets.
    p.send(event.functions.settle(), p.organizer)


def test_cancel_event_sets_the_refund_deadline(p: Protocol, event: Contract) -> None:
    assert p.view(event.functions.refundDeadline()) == 0
    receipt = p.send(event.functions.cancelEvent(), p.organizer)
    deadline = p.w3.eth.get_block(receipt["blockNumber"])["timestamp"] + REFUND_CLAIM_PERIOD
    assert p.logs(event, "EventCancelled", receipt) == [{"refundDeadline": deadline}]
    assert p.view(event.functions.refundDeadline()) == deadline
    assert p.view(event.functions.REFUND_CLAIM_PERIOD()) == REFUND_CLAIM_PERIOD


def test_claim_refund_after_the_refund_deadline_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.buy(event, fans[0], nonce=3, quantity=2)
    p.send(event.functions.cancelEvent(), p.organizer)
    deadline = p.view(event.functions.refundDeadline())
    p.travel_to(deadline)  # the last second at which a claim is paid
    p.send(event.functions.claimRefund(3 * 256), fans[0])
    p.travel_to(deadline + 1)
    with p.reverts(event, "RefundPeriodOver", deadline):
        p.send(event.functions.claimRefund(3 * 256 + 1), fans[0])


def test_sweep_unclaimed_refunds_after_the_deadline_credits_the_organizer(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.buy(event, fans[0], nonce=3, quantity=2)
    p.buy(event, fans[1], nonce=4)
    p.send(event.functions.cancelEvent(), p.organizer)
    p.send(event.functions.claimRefund(3 * 256), fans[0])
    deadline = p.view(event.functions.refundDeadline())
    p.travel_to(deadline + 1)
    # Anyone may sweep: the ether can only go to the organizer.
    receipt = p.send(event.functions.sweepUnclaimedRefunds(), fans[2])
    assert p.logs(event, "UnclaimedRefundsSwept", receipt) == [{"amount": 2 * PRICE}]
    assert p.view(event.functions.tier(0))[4] == 0
    assert p.view(event.functions.creditOf(p.organizer.address)) == 2 * PRICE
    p.send(event.functions.withdraw(), p.organizer)
    assert p.balance(event.address) == 0
    with p.reverts(event, "EventAlreadySettled"):
        p.send(event.functions.sweepUnclaimedRefunds(), fans[2])


def test_sweep_unclaimed_refunds_before_the_deadline_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.buy(event, fans[0], nonce=3)
    p.send(event.functions.cancelEvent(), p.organizer)
    deadline = p.view(event.functions.refundDeadline())
    # Not at the deadline itself: the replay that reads the revert runs a block later.
    p.travel_to(deadline - 100)
    with p.reverts(event, "RefundPeriodNotOver", deadline):
        p.send(event.functions.sweepUnclaimedRefunds(), p.organizer)


def test_sweep_unclaimed_refunds_of_an_event_not_cancelled_reverts(
    p: Protocol, event: Contract
) -> None:
    with p.reverts(event, "EventNotCancelled"):
        p.send(event.functions.sweepUnclaimedRefunds(), p.organizer)


def test_claim_refund_pays_what_was_paid_and_burns_the_ticket(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    buyer = fans[0]
    p.buy(event, buyer, quantity=2, nonce=3, unit_price=PRICE)
    p.send(event.functions.cancelEvent(), p.organizer)
    before = p.balance(buyer.address)
    receipt = p.send(event.functions.claimRefund(3 * 256), buyer)
    assert p.logs(event, "RefundClaimed", receipt) == [
        {"tokenId": 3 * 256, "owner": buyer.address, "amount": PRICE}
    ]
    assert p.logs(event, "Transfer", receipt) == [
        {"from": buyer.address, "to": ZERO_ADDRESS, "tokenId": 3 * 256}
    ]
    assert p.balance(buyer.address) == before + PRICE - fee(receipt)
    assert p.balance(event.address) == PRICE
    assert p.view(event.functions.tier(0))[4] == PRICE
    assert p.view(event.functions.balanceOf(buyer.address)) == 1
    assert p.view(event.functions.orderMinted(3))
    with p.reverts(event, "ERC721NonexistentToken", 3 * 256):
        p.view(event.functions.ownerOf(3 * 256))


def test_claim_refund_twice_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.buy(event, fans[0], nonce=3)
    p.send(event.functions.cancelEvent(), p.organizer)
    p.send(event.functions.claimRefund(3 * 256), fans[0])
    with p.reverts(event, "NotTicketOwner", 3 * 256, fans[0].address):
        p.send(event.functions.claimRefund(3 * 256), fans[0])


def test_claim_refund_burns_for_good_so_the_nonce_cannot_issue_again(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.buy(event, fans[0], nonce=3)
    p.send(event.functions.cancelEvent(), p.organizer)
    p.send(event.functions.claimRefund(3 * 256), fans[0])
    with p.reverts(event, "PermitAlreadyUsed", 3):
        p.buy(event, fans[0], nonce=3)


def test_claim_refund_after_resale_pays_the_holder_the_original_price(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.buy(event, fans[0], nonce=3)
    p.resell(event, fans[0], fans[1], 3 * 256, PRICE + PRICE // 10)
    p.send(event.functions.cancelEvent(), p.organizer)
    receipt = p.send(event.functions.claimRefund(3 * 256), fans[1])
    assert p.logs(event, "RefundClaimed", receipt)[0]["amount"] == PRICE
    # The first owner's resale proceeds stay withdrawable after cancellation.
    p.send(event.functions.withdraw(), fans[0])
    p.send(event.functions.withdraw(), p.organizer)
    assert p.balance(event.address) == 0


def test_claim_refund_of_a_checked_in_ticket_succeeds(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.buy(event, fans[0], nonce=3)
    p.check_in(event, [3 * 256])
    p.send(event.functions.cancelEvent(), p.organizer)
    p.send(event.functions.claimRefund(3 * 256), fans[0])
    assert p.balance(event.address) == 0


def test_claim_refund_before_cancellation_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.buy(event, fans[0], nonce=3)
    with p.reverts(event, "EventNotCancelled"):
        p.send(event.functions.claimRefund(3 * 256), fans[0])


def test_claim_refund_of_a_card_ticket_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.mint(event, 4, [fans[0].address])
    p.send(event.functions.cancelEvent(), p.organizer)
    with p.reverts(event, "NotRefundable", 4 * 256):
        p.send(event.functions.claimRefund(4 * 256), fans[0])


def test_claim_refund_by_a_non_owner_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.buy(event, fans[0], nonce=3)
    p.send(event.functions.cancelEvent(), p.organizer)
    with p.reverts(event, "NotTicketOwner", 3 * 256, fans[1].address):
        p.send(event.functions.claimRefund(3 * 256), fans[1])


def test_claim_refund_to_a_contract_that_rejects_ether_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...], wallet_factory: WalletFactory
) -> None:
    wallet = wallet_factory(fans[3])
    permit, signature = p.permit(event, wallet.address, nonce=3)
    purchase = event.encode_abi("purchase", [permit, signature])
    p.send(wallet.functions.execute(event.address, purchase), fans[3], value=PRICE)
    p.send(event.functions.cancelEvent(), p.organizer)
    p.send(wallet.functions.setOnEther(1, ZERO_ADDRESS, b""), fans[3])
    refund = event.encode_abi("claimRefund", [3 * 256])
    with p.reverts(event, "PaymentFailed", wallet.address, PRICE):
        p.send(wallet.functions.execute(event.address, refund), fans[3])


def test_claim_refund_reentered_from_the_payment_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...], wallet_factory: WalletFactory
) -> None:
    wallet = wallet_factory(fans[3])
    permit, signature = p.permit(event, wallet.address, quantity=2, nonce=3)
    purchase = event.encode_abi("purchase", [permit, signature])
    p.send(wallet.functions.execute(event.address, purchase), fans[3], value=2 * PRICE)
    p.send(event.functions.cancelEvent(), p.organizer)
    second = event.encode_abi("claimRefund", [3 * 256 + 1])
    p.send(wallet.functions.setOnEther(2, event.address, second), fans[3])

    first = event.encode_abi("claimRefund", [3 * 256])
    p.send(wallet.functions.execute(event.address, first), fans[3])

    assert not p.view(wallet.functions.reentrySucceeded())
    assert "0x" + p.view(wallet.functions.reentryResult()).hex() == encoded_error(
        event, "ReentrancyGuardReentrantCall"
    )
    assert p.view(event.functions.ownerOf(3 * 256 + 1)) == wallet.address
    assert p.balance(wallet.address) == PRICE
    assert p.balance(event.address) == PRICE


def test_withdraw_reentered_from_a_refund_payment_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...], wallet_factory: WalletFactory
) -> None:
    wallet = wallet_factory(fans[3])
    permit, signature = p.permit(event, wallet.address, nonce=3)
    purchase = event.encode_abi("purchase", [permit, signature])
    p.send(wallet.functions.execute(event.address, purchase), fans[3], value=PRICE)
    p.send(event.functions.cancelEvent(), p.organizer)
    p.send(wallet.functions.setOnEther(2, event.address, event.encode_abi("withdraw", [])), fans[3])
    p.send(
        wallet.functions.execute(event.address, event.encode_abi("claimRefund", [3 * 256])),
        fans[3],
    )
    assert "0x" + p.view(wallet.functions.reentryResult()).hex() == encoded_error(
        event, "ReentrancyGuardReentrantCall"
    )


# -- settle -----------------------------------------------------------------------------------


def test_settle_releases_all_escrow_to_the_organizer(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.send(event.functions.configureTier(1, (PRICE // 2, 10, 0, digest_of("b"))), p.organizer)
    p.buy(event, fans[0], quantity=2, nonce=1)
    p.buy(event, fans[1], nonce=2, tier=1, unit_price=PRICE // 2)
    p.travel_to(EVENT_END)
    receipt = p.send(event.functions.settle(), p.organizer)
    total = 2 * PRICE + PRICE // 2
    assert p.logs(event, "Settled", receipt) == [{"amount": total}]
    assert p.view(event.functions.eventInfo())[10]
    assert p.view(event.functions.tier(0))[4] == 0
    assert p.view(event.functions.tier(1))[4] == 0
    assert p.view(event.functions.creditOf(p.organizer.address)) == total
    before = p.balance(p.organizer.address)
    receipt = p.send(event.functions.withdraw(), p.organizer)
    assert p.balance(p.organizer.address) == before + total - fee(receipt)
    assert p.balance(event.address) == 0


def test_settle_before_the_event_ends_reverts(p: Protocol, event: Contract) -> None:
    p.travel_to(EVENT_END - 10)
    with p.reverts(event, "EventNotOver", EVENT_END):
        p.send(event.functions.settle(), p.organizer)


def test_settle_twice_reverts(p: Protocol, event: Contract) -> None:
    p.travel_to(EVENT_END)
    p.send(event.functions.settle(), p.organizer)
    with p.reverts(event, "EventAlreadySettled"):
        p.send(event.functions.settle(), p.organizer)


def test_settle_of_a_cancelled_event_reverts(p: Protocol, event: Contract) -> None:
    p.send(event.functions.cancelEvent(), p.organizer)
    p.travel_to(EVENT_END)
    with p.reverts(event, "EventIsCancelled"):
        p.send(event.functions.settle(), p.organizer)


def test_claim_refund_after_settlement_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    p.buy(event, fans[0], nonce=3)
    p.travel_to(EVENT_END)
    p.send(event.functions.settle(), p.organizer)
    with p.reverts(event, "EventNotCancelled"):
        p.send(event.functions.claimRefund(3 * 256), fans[0])


# -- metadata and introspection ----------------------------------------------------------------


def test_token_uri_is_the_tiers_cidv0(p: Protocol, fans: tuple[LocalAccount, ...]) -> None:
    digest = bytes.fromhex("00" * 31 + "01")  # a leading-zero digest still gives 46 characters
    event = p.create_event(EventSpec(event_id=6, tiers=[TierSpec(), TierSpec(metadata=digest)]))
    p.mint(event, 1, [fans[0].address], tier=0)
    p.mint(event, 2, [fans[0].address], tier=1)
    expected_0 = Cid(0, DAG_PB, b"\x12\x20" + digest_of("tier")).encode()
    expected_1 = Cid(0, DAG_PB, b"\x12\x20" + digest).encode()
    assert p.view(event.functions.tokenURI(256)) == f"ipfs://{expected_0}"
    assert p.view(event.functions.tokenURI(512)) == f"ipfs://{expected_1}"
    assert expected_0.startswith("Qm") and len(expected_0) == 46
    assert len(expected_1) == 46


@pytest.mark.parametrize(
    "cid",
    [
        "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn",  # the empty UnixFS directory
        "QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR",
    ],
)
def test_token_uri_of_a_known_cid_digest_is_that_cid(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...], cid: str
) -> None:
    digest = parse_cid(cid).digest
    p.send(event.functions.configureTier(0, (PRICE, 100, 0, digest)), p.organizer)
    p.mint(event, 1, [fans[0].address])
    assert p.view(event.functions.tokenURI(256)) == f"ipfs://{cid}"


def test_royalty_info_names_the_organizer(p: Protocol, event: Contract) -> None:
    assert p.view(event.functions.royaltyInfo(256, ETHER)) == [
        p.organizer.address,
        ETHER * 500 // 10_000,
    ]
    assert p.view(event.functions.royaltyInfo(0, 0)) == [p.organizer.address, 0]


@pytest.mark.parametrize(
    ("interface_id", "supported"),
    [
        ("01ffc9a7", True),  # ERC-165
        ("80ac58cd", True),  # ERC-721
        ("5b5e139f", True),  # ERC-721 Metadata
        ("2a55205a", True),  # ERC-2981
        ("7965db0b", True),  # AccessControl
        ("49064906", True),  # ERC-4906 metadata updates
        ("780e9d63", False),  # ERC-721 Enumerable
        ("ffffffff", False),
    ],
)
def test_supports_interface_reports_the_implemented_interfaces(
    p: Protocol, event: Contract, interface_id: str, supported: bool
) -> None:
    assert p.view(event.functions.supportsInterface(bytes.fromhex(interface_id))) is supported


def test_renounce_role_for_another_account_reverts(
    p: Protocol, event: Contract, fans: tuple[LocalAccount, ...]
) -> None:
    with p.reverts(event, "AccessControlBadConfirmation"):
        p.send(event.functions.renounceRole(SCANNER_ROLE, p.scanner.address), fans[0])


def test_renounce_role_by_the_holder_removes_it(p: Protocol, event: Contract) -> None:
    p.send(event.functions.renounceRole(SCANNER_ROLE, p.scanner.address), p.scanner)
    assert not p.view(event.functions.hasRole(SCANNER_ROLE, p.scanner.address))


def test_eip712_domain_names_this_clone(p: Protocol, event: Contract) -> None:
    domain = p.view(event.functions.eip712Domain())
    assert domain[1:5] == ["fairtix TicketEvent", "1", p.w3.eth.chain_id, event.address]
