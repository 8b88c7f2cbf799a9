"""One Cloudflare API session: the account, the SDK client, and how its calls are paced.

Every API operation takes a :class:`CloudflareSession` rather than a client and an account id:
the session also carries the pacer and retry policy the client's transport uses (so bulk work
can report its API usage, or run under a pacer of its own), the clock they wait on, and who is
told of each page a long listing reads. Nothing about a session lives in a module global: the
CLI builds one per command (:mod:`code24ctl.cli.session`), tests build their own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from code24ctl.cloudflare.pacing.ratelimit import SYSTEM_CLOCK, Clock, Pacer
from code24ctl.cloudflare.pacing.retry import RetryPolicy

if TYPE_CHECKING:
    import httpx
    from cloudflare import Cloudflare

    from code24ctl.cloudflare.client import Credentials

#: Told of each page a listing read: ``(what, pages read so far, total pages or None)``.
PageListener = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class CloudflareSession:
    """An authenticated SDK client for one account, and the pacing its calls go through.

    ``transport`` is the real transport under the client's paced one (``None``: the client
    was built elsewhere and is not paced by us; :meth:`paced` paces a copy). ``pages`` hears
    of each page a long listing reads, so the CLI can say how far it got.
    """

    account_id: str
    client: Cloudflare
    pacer: Pacer
    policy: RetryPolicy
    clock: Clock = SYSTEM_CLOCK
    pages: PageListener | None = None
    transport: httpx.BaseTransport | None = None

    @classmethod
    def over(
        cls,
        client: Cloudflare,
        account_id: str,
        *,
        pacer: Pacer | None = None,
        policy: RetryPolicy | None = None,
    ) -> CloudflareSession:
        """A session over a client built elsewhere (not paced by us): its calls go out as
        they are; :meth:`paced` gives a paced copy."""
        return cls(account_id, client, pacer or Pacer(), policy or RetryPolicy())

    def page_read(self, what: str, pages: int, total_pages: int | None = None) -> None:
        """Tell this session's page listener, if any, that a listing read a page."""
        if self.pages is not None:
            self.pages(what, pages, total_pages)

    def with_pages(self, listener: PageListener | None) -> CloudflareSession:
        """This session, with ``listener`` told of each page a listing reads."""
        return dataclasses.replace(self, pages=listener)

    @contextmanager
    def paced(
        self, pacer: Pacer | None = None, policy: RetryPolicy | None = None
    ) -> Iterator[CloudflareSession]:
        """This session under ``pacer`` and ``policy`` for the block.

        A paced session is itself when neither is given (or both are the ones it uses), so
        nested work (``apply`` calling ``bind``) never counts a call twice; otherwise the copy
        shares the real transport and is closed after the block. A session over a client not
        paced by us gets a copy over httpx's own transport.
        """
        import httpx

        from code24ctl.cloudflare.pacing.transport import PacedTransport, paced_http_client

        same = (pacer is None or pacer is self.pacer) and (policy is None or policy == self.policy)
        if self.transport is not None and same:
            yield self
            return
        inner = self.transport if self.transport is not None else httpx.HTTPTransport()
        transport = PacedTransport(
            inner,
            pacer or self.pacer,
            policy or self.policy,
            clock=self.clock,
            owns_inner=self.transport is None,
        )
        client = self.client.with_options(http_client=paced_http_client(transport), max_retries=0)
        copy = dataclasses.replace(
            self, client=client, pacer=transport.pacer, policy=transport.policy, transport=inner
        )
        try:
            yield copy
        finally:
            client.close()


def open_session(
    credentials: Credentials,
    account_id: str,
    *,
    pacer: Pacer | None = None,
    policy: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
    clock: Clock = SYSTEM_CLOCK,
    pages: PageListener | None = None,
) -> CloudflareSession:
    """A session whose every request goes through a paced transport.

    ``pacer`` (default: a fresh one on ``clock``), ``policy`` (default: bulk retries), the real
    ``transport`` (default: httpx's own, with the process's TLS context; tests pass an
    in-process one) and the ``clock`` are injected.
    """
    import httpx

    from code24ctl.cloudflare.client import make_client, tls_context

    real = transport or httpx.HTTPTransport(verify=tls_context())
    pacer = pacer or Pacer(clock=clock)
    policy = policy or RetryPolicy()
    client = make_client(credentials, pacer=pacer, policy=policy, transport=real, clock=clock)
    return CloudflareSession(account_id, client, pacer, policy, clock, pages, real)
