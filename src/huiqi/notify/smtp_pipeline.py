"""Sending a run of messages over one SMTP session, pipelined (RFC 2920) when the relay allows.

smtplib waits for the answer to every command, so MAIL, RCPT, DATA and the end of the content
make four round trips a message. When the relay offers PIPELINING, MAIL, RCPT and DATA go out in
one write, and a message's content goes out in the same write as the next message's commands (the
content may lead a command group, RFC 2920 section 3.1): one round trip a message. A relay
without PIPELINING is spoken to one command at a time through smtplib.

Each message gets its own outcome: a refused recipient fails that message only. A session that
breaks fails only a message whose content went unanswered (retryable: it may have arrived, and
goes again with the same Message-ID); the caller opens a new session for the rest.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Sequence
from typing import NamedTuple

from huiqi.notify.errors import DeliveryError

_LINE_END = re.compile(rb"\r\n|\n|\r")
_LEADING_DOT = re.compile(rb"(?m)^\.")


class Envelope(NamedTuple):
    """One message for the session: its envelope recipient and its MIME bytes."""

    recipient: str
    content: bytes


def data_block(content: bytes) -> bytes:
    """The content as sent after DATA: CRLF line ends, leading dots doubled, ended by CRLF.CRLF."""
    text = _LEADING_DOT.sub(b"..", _LINE_END.sub(b"\r\n", content))
    if not text.endswith(b"\r\n"):
        text += b"\r\n"
    return text + b".\r\n"


def _refusal(stage: str, code: int, text: bytes | str) -> DeliveryError:
    """The error of a refused command: 5xx cannot succeed later, 4xx (and nonsense) may."""
    reason = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    if stage == "RCPT" and 500 <= code < 600:
        return DeliveryError(f"recipient refused: {code} {reason}", permanent=True)
    return DeliveryError(f"SMTP {stage} {code}: {reason}", permanent=500 <= code < 600)


def _lost(exc: Exception) -> DeliveryError:
    """A retryable error for a message whose fate a broken session left unknown."""
    return DeliveryError(f"SMTP session lost: {type(exc).__name__}: {exc}")


def _unsendable(recipient: str) -> DeliveryError | None:
    """Why an address cannot go into an SMTP command, if it cannot.

    Commands are written here directly, so what smtplib's putcmd refuses is refused here: a line
    break would smuggle in a command of its own. The relay is spoken to in ASCII (no SMTPUTF8).
    """
    if "\r" in recipient or "\n" in recipient:
        return DeliveryError("address contains a line break", permanent=True)
    if not recipient.isascii():
        return DeliveryError(f"address is not ASCII: {recipient!r}", permanent=True)
    return None


def send_run(
    smtp: smtplib.SMTP, envelope_from: str, messages: Sequence[Envelope]
) -> list[DeliveryError | None]:
    """Send messages over an open session; one outcome each (None = accepted by the relay).

    The list may be shorter than `messages` (never empty) when the session broke or the relay
    closed it: the outcomes are for the first messages, those left were not delivered and may go
    over a new session, and this one is closed. Any other ending leaves it open for QUIT.
    """
    if not messages:
        return []
    if _unsendable(envelope_from):
        raise ValueError(f"unusable envelope sender {envelope_from!r}")
    try:
        smtp.ehlo_or_helo_if_needed()
    except (smtplib.SMTPException, OSError) as exc:
        smtp.close()
        return [_lost(exc)]
    if smtp.does_esmtp and smtp.has_extn("pipelining"):
        return _pipelined(smtp, envelope_from, messages)
    return _one_by_one(smtp, envelope_from, messages)


def _pipelined(
    smtp: smtplib.SMTP, envelope_from: str, messages: Sequence[Envelope]
) -> list[DeliveryError | None]:
    """One write and one wait a message: [previous content] [RSET] MAIL RCPT DATA."""
    mail_from = f"MAIL FROM:{smtplib.quoteaddr(envelope_from)}\r\n".encode("ascii")
    decided: dict[int, DeliveryError | None] = {}
    in_flight: list[int] = []  # written to the relay, its answer not read yet
    # the message whose content leads the next write: its index, the bytes, and an error that
    # stands whatever the relay answers (a DATA accepted after a refused RCPT gets no content)
    held: tuple[int, bytes, DeliveryError | None] | None = None
    reset = False  # a refused transaction is reset before the next MAIL

    def finish_held() -> None:
        """Read the relay's answer to the held message's content."""
        assert held is not None
        index, _, standing = held
        code, text = smtp.getreply()
        decided[index] = standing or (None if code == 250 else _refusal("DATA", code, text))
        in_flight.remove(index)
        if code == 421:
            raise smtplib.SMTPServerDisconnected("the relay closed the session (421)")

    try:
        for index, message in enumerate(messages):
            refused = _unsendable(message.recipient)
            if refused is not None:
                decided[index] = refused
                continue
            rcpt_to = f"RCPT TO:{smtplib.quoteaddr(message.recipient)}\r\nDATA\r\n"
            head = held[1] if held is not None else b""
            in_flight.append(index)
            smtp.send(b"".join((head, b"RSET\r\n" if reset else b"", mail_from, rcpt_to.encode())))
            if held is not None:
                finish_held()
                held = None
            if reset:
                smtp.getreply()
                reset = False
            (mail, mail_text), (rcpt, rcpt_text), (data, data_text) = (
                smtp.getreply(),
                smtp.getreply(),
                smtp.getreply(),
            )
            error = None
            if mail != 250:
                error = _refusal("MAIL", mail, mail_text)
            elif rcpt not in (250, 251):
                error = _refusal("RCPT", rcpt, rcpt_text)
            if data == 354:
                held = (index, data_block(message.content) if error is None else b".\r\n", error)
            else:
                decided[index] = error or _refusal("DATA", data, data_text)
                in_flight.remove(index)
                reset = True
            if 421 in (mail, rcpt, data):
                raise smtplib.SMTPServerDisconnected("the relay closed the session (421)")
        if held is not None:
            smtp.send(held[1])
            finish_held()
    except (smtplib.SMTPException, OSError) as exc:
        # a content sent without an answer may have arrived (resent later, same key); commands
        # whose content was never sent delivered nothing: a new session sends them at once
        # (unless nothing at all was settled here: the caller must get at least one outcome)
        sent = [i for i in in_flight if held is not None and i == held[0]]
        for index in sent if decided or sent else in_flight:
            decided[index] = _lost(exc)
        smtp.close()
    return [decided[i] for i in range(len(decided))]


def _one_by_one(
    smtp: smtplib.SMTP, envelope_from: str, messages: Sequence[Envelope]
) -> list[DeliveryError | None]:
    """Through smtplib, waiting for every answer (a relay without PIPELINING)."""
    outcomes: list[DeliveryError | None] = []
    for message in messages:
        refused = _unsendable(message.recipient)
        if refused is not None:
            outcomes.append(refused)
            continue
        try:
            smtp.sendmail(envelope_from, [message.recipient], message.content)
            outcomes.append(None)
        except smtplib.SMTPRecipientsRefused as exc:
            ((code, text),) = exc.recipients.values()
            outcomes.append(_refusal("RCPT", code, text))
        except smtplib.SMTPSenderRefused as exc:
            outcomes.append(_refusal("MAIL", exc.smtp_code, exc.smtp_error))
        except smtplib.SMTPResponseException as exc:
            outcomes.append(_refusal("DATA", exc.smtp_code, exc.smtp_error))
        except (smtplib.SMTPException, OSError) as exc:
            outcomes.append(_lost(exc))
            smtp.close()
        if smtp.sock is None:  # broken, or closed by smtplib on the relay's 421
            break
    return outcomes
