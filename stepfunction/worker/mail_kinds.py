"""The kinds of mail the outbox sends, each with the same guarantee (issue 13): every address
gets its mail exactly once. A notice's ``kind`` says which; a new kind is one more class here,
and the outbox's claims, per-recipient outcomes, retries and ``unreached`` come with it.

A kind says who is due a mail (from the record as it is now: an address that no longer is
gets nothing more), what the mail says, and whether reminders follow.
"""

from stepfunction import ended_mail, mails
from stepfunction.decision_fields import same_person, votes_of
from stepfunction.notices import pending, reviewers_of


class StepMail:
    """A pending step's reviewers: a mail, then reminders, until they answer or vote."""

    reminds = True
    linked = True  # its mails may carry links that answer the step

    @staticmethod
    def addressees(record):
        if not pending(record):
            return []
        votes = votes_of(record)  # a reviewer who voted (a quorum's step) is reminded no more
        return [
            a for a in reviewers_of(record) if not any(same_person(v.get("by"), a) for v in votes)
        ]

    @staticmethod
    def compose(settings, signer, uri, record, address, nonce, before, signs_in):
        return mails.compose(
            settings, signer, uri, record, address, nonce, before, signs_in=signs_in
        )


class EndedMail:
    """An execution record that ended badly: one mail to each of its ``notify`` addresses."""

    reminds = False
    linked = False

    @staticmethod
    def addressees(record):
        return ended_mail.recipients(record)

    @staticmethod
    def compose(settings, signer, uri, record, address, nonce, before, signs_in):
        return ended_mail.compose(settings, uri, record, address)


KINDS = {None: StepMail, ended_mail.KIND: EndedMail}


def kind_of(notice):
    """The notice's kind (a notice without one is a step's)."""
    return KINDS[notice.get("kind")]
