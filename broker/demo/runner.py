"""Running the whole exchange once: keys, topics, the router, three kinds of agency, a summary.

Everything runs in one event loop: the router (:func:`broker.router.service.run_router`),
one subscriber per partner, tails of the audit and quarantine topics, and the agencies'
publishers acting out :mod:`broker.demo.story`. The run waits for the router to decide
every input and for every granted delivery to reach its partner's outbox; then a reviewer
decides the story's holds (as ``msht held release|refuse`` does) and the run waits for the
router to carry the decisions out and for the sender's notices; it stops the router,
verifies the audit chain with the router key from the trust store, and prints the summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from adapters.exchange.seam import EventSealer
from adapters.exchange.signed import EnvelopeSealer, router_key_from_settings, sealer_from_settings
from adapters.intake.publisher import Publisher, PublishReport
from broker.audit import parse_record, verify_chain
from broker.audit.reader import read_audit_topic
from broker.audit.verify import router_keys
from broker.crypto.keyfiles import signing_key_file
from broker.crypto.signing_keys import load_signing_key
from broker.crypto.trust_signature import trust_store_from_settings
from broker.demo import story
from broker.demo.observed import (
    FailedDelivery,
    NoticeSeen,
    Observed,
    PublishedInput,
    QuarantinedInput,
    RejectedInput,
    RenderedFile,
    ReviewSent,
    evaluate,
    missing,
)
from broker.demo.summary import print_summary, short
from broker.demo.watch import Subscribers, TopicTail, until
from broker.demo.workspace import (
    create_keys,
    demo_settings,
    is_demo_topic,
    new_run_id,
    prepare_directory,
    run_topics,
    with_operator_key,
)
from broker.errors import TransportError
from broker.kafka import clients as kafka
from broker.policy import LoadedPolicy, load_policy
from broker.review.deciding import check_router_signed, load_reviewer_key, sign_decision
from broker.router.review_queue import read_held_queue, send_decision
from broker.router.service import RouterStats, run_router
from broker.settings import Settings
from broker.types import AgencyId


@dataclass(frozen=True)
class DemoOptions:
    """What ``msht demo`` was asked to do."""

    directory: Path
    cleanup: bool = False
    wait: float = 30.0
    """Seconds each stage may wait for the router or the subscribers."""
    kafka_wait: float = 30.0
    policy_file: Path = story.POLICY
    examples: Path = story.EXAMPLES


class _Run:
    """The state of one demo run, and the steps that change it."""

    def __init__(
        self, settings: Settings, policy: LoadedPolicy, options: DemoOptions, console: Console
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.options = options
        self.console = console
        self.partners = tuple(p.id for p in policy.policy.partners)
        self.observed = Observed(partners=self.partners)
        self.router: asyncio.Task[RouterStats] | None = None
        self.audit: TopicTail | None = None
        self.quarantine: TopicTail | None = None
        self.subscribers: Subscribers | None = None
        self.started = time.monotonic()

    # --- output ------------------------------------------------------------------------

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.console.print(f"[dim]{elapsed:5.1f}s[/] {text}", highlight=False)

    # --- watching ----------------------------------------------------------------------

    def healthy(self) -> None:
        """Raise the error of any background part (router, tails, subscribers) that failed."""
        if self.router is not None and self.router.done():
            error = None if self.router.cancelled() else self.router.exception()
            if error is not None:
                raise error
            raise TransportError("the router stopped before the demo finished")
        for part in (self.audit, self.quarantine, self.subscribers):
            if part is not None:
                part.check()

    def refresh(self) -> None:
        """Copy what the tails and subscribers have seen so far into :attr:`observed`."""
        self.healthy()
        if self.audit is not None:
            self.observed.audit = [parse_record(r.value) for r in self.audit.records]
        if self.quarantine is not None:
            self.observed.quarantined = [_quarantined(r) for r in self.quarantine.records]
        if self.subscribers is not None:
            rendered: list[RenderedFile] = []
            failed: list[FailedDelivery] = []
            notices: list[NoticeSeen] = []
            for partner, sub in self.subscribers.by_partner.items():
                notices.extend(
                    NoticeSeen(
                        partner, n.status.value, n.event_id, n.hold_id, n.partners, n.reviewer
                    )
                    for n, _ in sub.report.notices
                )
                rendered.extend(
                    RenderedFile(partner, r.event_id, r.event_type, r.fmt, r.path, r.verified)
                    for r in sub.report.rendered
                )
                failed.extend(
                    FailedDelivery(partner, f.offset, f.reason) for f in sub.report.failed
                )
            self.observed.rendered = rendered
            self.observed.failed = failed
            self.observed.notices = notices

    async def settle(self, what: str) -> bool:
        """Wait until the router decided every input and every delivery was rendered."""

        def done() -> bool:
            self.refresh()
            return not self.observed.unsettled() and not self.observed.undelivered()

        if await until(done, self.options.wait):
            return True
        self.say(
            f"[red]gave up waiting after {self.options.wait:.0f}s for {what}: "
            f"{len(self.observed.unsettled())} input(s) undecided, "
            f"{len(self.observed.undelivered())} delivery(ies) not rendered[/]"
        )
        return False

    # --- acting ------------------------------------------------------------------------

    async def send(self, sends: Sequence[story.Send]) -> None:
        """Each agency publishes its files through its own publisher, in order."""
        for agency, group in _by_agency(sends):
            sealer = sealer_from_settings(self.settings, AgencyId(agency))
            async with Publisher.open(self.settings, sealer) as publisher:
                for send in group:
                    path = self.options.examples / send.file
                    before = _counts(publisher.report)
                    await publisher.publish_file(path)
                    self._record(publisher.report, before, agency, path.name)
                    self._announce(publisher.report, before, agency, send)

    async def forge(self) -> None:
        """Publish the forgery: CPS's name, the police's key, on the CPS's ingress topic."""
        police = load_signing_key(
            signing_key_file(self.settings.key_dir_path, story.FORGER), story.FORGER
        )
        impostor = dataclasses.replace(police, agency=AgencyId(story.FORGERY.agency))
        sealer: EventSealer = EnvelopeSealer(
            impostor, router_key=router_key_from_settings(self.settings)
        )
        path = self.options.examples / story.FORGERY.file
        data = story.forged_document(path.read_bytes())
        name = f"forged-{path.name}"
        async with Publisher.open(self.settings, sealer) as publisher:
            await publisher.publish_bytes(name, data, "cps-xml")
            self._record(publisher.report, (0, 0), story.FORGERY.agency, name, forged=True)
        [item] = [p for p in self.observed.published if p.forged]
        self.say(
            f"[bold]forger[/] publishes {story.FORGERY.shows} "
            f"(event {short(item.event_id)}) on the CPS ingress topic"
        )

    def _record(
        self,
        report: PublishReport,
        before: tuple[int, int],
        agency: str,
        name: str,
        *,
        forged: bool = False,
    ) -> None:
        for p in report.published[before[0] :]:
            self.observed.published.append(
                PublishedInput(
                    agency, name, p.row, p.event_id, p.event_type, p.topic, p.partition,
                    p.offset, forged,
                )
            )  # fmt: skip
        for r in report.rejected[before[1] :]:
            problems = r.problems or ()
            if not problems:
                self.observed.rejected.append(
                    RejectedInput(agency, name, r.row, r.message, "(document)", r.message)
                )
            for problem in problems:
                self.observed.rejected.append(
                    RejectedInput(agency, name, r.row, r.message, problem.location, problem.reason)
                )

    def _announce(
        self, report: PublishReport, before: tuple[int, int], agency: str, send: story.Send
    ) -> None:
        published = report.published[before[0] :]
        rejected = report.rejected[before[1] :]
        parts = []
        if published:
            types = sorted({p.event_type for p in published})
            parts.append(f"{len(published)} event(s) {', '.join(types)}")
        if rejected:
            parts.append(f"[red]{len(rejected)} rejected by its adapter[/]")
        outcome = "; ".join(parts) or "nothing"
        self.say(f"[bold]{agency}[/] sends {send.shows} ({Path(send.file).name}): {outcome}")

    async def review(self, reviews: Sequence[story.Review]) -> None:
        """The reviewer the policy allows decides each hold, as ``msht held release|refuse``
        does: read the held topic, check the router signed the hold, sign, send."""
        queue = await read_held_queue(self.settings, timeout_s=self.options.wait)
        trust = trust_store_from_settings(self.settings, component="demo").store
        for item in reviews:
            ids = {
                p.event_id
                for p in self.observed.published
                if p.agency == item.source and p.event_type == item.event_type
            }
            found = [w for w in queue.holds if w.record.event_id in ids]
            hold = found[0].record.hold_for(item.partner) if found else None
            if hold is None:
                self.say(
                    f"[red]no hold of a {item.event_type} from {item.source} for "
                    f"{item.partner} on the held topic[/]"
                )
                continue
            waiting = found[0]
            check_router_signed(trust, waiting)
            reviewer = story.reviewer_for(self.policy.policy, hold.guard, item.partner)
            key = load_reviewer_key(
                self.settings.key_dir_path, reviewer, self.settings.key_passphrase_bytes()
            )
            value = sign_decision(
                waiting,
                partner=item.partner,
                verdict=item.verdict,
                reason=item.reason,
                reviewer=key,
                decided_at=datetime.now(UTC),
            )
            await send_decision(self.settings, waiting.record.hold_id, value)
            self.observed.reviews.append(
                ReviewSent(
                    waiting.record.hold_id, waiting.record.event_id, item.partner, hold.guard,
                    item.verdict.value, reviewer, item.reason,
                )
            )  # fmt: skip
            self.say(
                f"[bold]{reviewer}[/] {item.verdict.value}s hold {waiting.record.hold_id} "
                f"({item.event_type} {short(waiting.record.event_id)} from {item.source}, "
                f"{hold.guard}) for {item.partner}: {item.reason}"
            )

    async def settle_reviews(self) -> bool:
        """Wait until the router carried out every decision sent, every release reached its
        partner, and the sources have the notices of every decision."""

        def done() -> bool:
            self.refresh()
            outcomes = self.observed.review_outcomes()
            # The notice of the decision, not the one sent when the event was held.
            notified = {
                (n.hold_id, p)
                for n in self.observed.notices
                if n.status != "held"
                for p in n.partners
            }
            return (
                all((r.partner, r.event_id) in outcomes for r in self.observed.reviews)
                and all((r.hold_id, r.partner) in notified for r in self.observed.reviews)
                and not self.observed.undelivered()
            )

        if await until(done, self.options.wait):
            return True
        self.say(
            f"[red]gave up waiting after {self.options.wait:.0f}s for the router to carry out "
            "the reviewers' decisions[/]"
        )
        return False

    # --- the end -----------------------------------------------------------------------

    async def verify_audit(self) -> str:
        """Read the whole audit topic and verify its chains with the trust store's router key."""
        entries = await read_audit_topic(self.settings, timeout_s=self.options.wait)
        keys = router_keys(self.settings.trust_store_path)
        self.observed.chain = verify_chain(
            [(e.offset, e.value) for e in entries], router_keys=keys or None
        )
        if keys:
            return "router signatures checked against " + str(self.settings.trust_store_path)
        return "[red]signatures not checked: no router key in the trust store[/]"


def _counts(report: PublishReport) -> tuple[int, int]:
    return len(report.published), len(report.rejected)


def _by_agency(sends: Iterable[story.Send]) -> list[tuple[str, list[story.Send]]]:
    """Consecutive sends grouped by agency (one publisher per group, order kept)."""
    groups: list[tuple[str, list[story.Send]]] = []
    for send in sends:
        if groups and groups[-1][0] == send.agency:
            groups[-1][1].append(send)
        else:
            groups.append((send.agency, [send]))
    return groups


def _quarantined(record: object) -> QuarantinedInput:
    headers = {k: v.decode("utf-8", "replace") for k, v in getattr(record, "headers", ())}
    return QuarantinedInput(
        source_topic=headers.get("msht-source-topic", "?"),
        offset=int(headers.get("msht-offset", "-1")),
        reason=headers.get("msht-reason", "?"),
        error=headers.get("msht-error", ""),
    )


async def run_demo(base: Settings, options: DemoOptions, console: Console) -> int:
    """Run the demo; returns 0 when everything expected happened, else 1."""
    run_id = new_run_id()
    directory = options.directory.resolve()
    settings, operator = with_operator_key(
        demo_settings(base, directory, run_id, options.policy_file)
    )
    policy = load_policy(options.policy_file)
    run = _Run(settings, policy, options, console)
    console.rule(f"[bold]msht demo[/] run {run_id}")
    run.say(f"connecting to Kafka at {settings.bootstrap_servers} as {settings.username!r}")
    await kafka.wait_for_broker(settings, timeout=options.kafka_wait)

    prepare_directory(directory)
    reviewers = [r.id for r in policy.policy.reviewers]
    parties = [*story.PUBLISHERS, *run.partners, *reviewers]
    made = create_keys(settings, parties, operator=operator)
    run.say(
        f"keys for {', '.join(made)} in {settings.key_dir_path} "
        f"(router: signing + X25519, marked router: true); trust store {settings.trust_store_path} "
        f"signed by the run's operator key {operator.key_id}"
    )
    topics = run_topics(settings, policy, story.PUBLISHERS)
    await kafka.ensure_topics(settings, topics)
    run.say(f"{len(topics)} topics created, all named {run_id}.*")
    try:
        code = await _exchange(run)
    finally:
        if options.cleanup:
            await kafka.delete_topics(settings, topics)
            run.say(f"deleted the run's {len(topics)} topics (--cleanup)")
    if not options.cleanup:
        console.print(
            f"The run's topics stay on Kafka (all named [bold]{run_id}.*[/]) to look at, e.g.\n"
            f"  msht audit verify --topic {settings.audit_topic} "
            f"--trust-store {settings.trust_store_path}\n"
            f"  msht audit query --topic {settings.audit_topic} --outcome held\n"
            "`msht demo --purge` deletes the topics of every demo run; `msht demo --cleanup` "
            "deletes a run's own topics when it ends."
        )
    return code


async def _exchange(run: _Run) -> int:
    settings, options = run.settings, run.options
    stop = asyncio.Event()
    run.router = asyncio.create_task(
        run_router(settings, run.policy, instance="demo", stop=stop, progress_every=3600.0),
        name="router",
    )
    run.say(f"router started in-process with {options.policy_file} (policy {run.policy.version})")
    try:
        async with contextlib.AsyncExitStack() as stack:
            run.audit = await stack.enter_async_context(TopicTail(settings, settings.audit_topic))
            run.quarantine = await stack.enter_async_context(
                TopicTail(settings, settings.quarantine_topic)
            )
            run.subscribers = await stack.enter_async_context(
                Subscribers(
                    settings,
                    run.policy,
                    settings.state_dir / "outbox",
                    group=settings.delivery_prefix,
                )
            )
            run.say(
                f"subscribers for {', '.join(run.partners)} render into "
                f"{settings.state_dir / 'outbox'}/<partner>/"
            )
            complete = await _act(run)
        stats = await _stop_router(run, stop)
    finally:
        if run.router is not None and not run.router.done():
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(run.router, 30)
    run.say(
        f"router stopped: {stats.records} inputs, {stats.decided} decided, "
        f"{stats.delivered} deliveries, {stats.quarantined} quarantined, "
        f"{stats.duplicates} duplicate(s) dropped"
    )
    signed_by = await run.verify_audit()
    evaluate(run.observed, story.EXPECTATIONS)
    problems = missing(run.observed)
    if not complete and not problems:
        problems = ["the run did not settle in time"]
    print_summary(
        run.console,
        run.observed,
        directory=settings.state_dir,
        signed_by=signed_by,
        problems=problems,
    )
    elapsed = time.monotonic() - run.started
    if problems:
        run.console.print(f"[bold red]demo FAILED[/] after {elapsed:.1f}s (exit 1)")
        return 1
    kinds = Counter(r.kind for r in run.observed.audit)
    run.console.print(
        f"[bold green]demo complete[/] in {elapsed:.1f}s: {len(run.observed.published)} inputs "
        f"({len(run.observed.decisions())} decided, {kinds['duplicate']} duplicate(s), "
        f"{kinds['quarantine']} quarantined), {len(run.observed.review_outcomes())} review "
        f"decision(s) carried out, {len(run.observed.rendered)} deliveries in the outbox, "
        "audit chain verified"
    )
    return 0


async def _act(run: _Run) -> bool:
    """The story's two acts; True when the router and subscribers kept up with both."""
    await run.send(story.ACT_ONE)
    run.say("waiting for the router's decisions and the partners' subscribers ...")
    first = await _settle_before_cps(run)
    cps_xml = [
        r
        for r in run.observed.rendered
        if r.partner == "cps" and r.event_type in story.CPS_WAITS_FOR
    ]
    for r in sorted(cps_xml, key=lambda r: r.event_type):
        where = r.path.relative_to(run.settings.state_dir) if r.path else r.event_id
        run.say(f"[bold]cps[/] has {r.event_type} in its outbox as {r.fmt}: {where}")
    await run.send(story.ACT_TWO)
    await run.forge()
    run.say("waiting for the router's decisions and the partners' subscribers ...")
    second = await run.settle("act two")
    run.refresh()
    run.say(
        f"router decided {len(run.observed.decisions())} events, quarantined "
        f"{len(run.observed.quarantined)}; subscribers rendered {len(run.observed.rendered)} "
        "deliveries"
    )
    await run.review(story.REVIEWS)
    run.say("waiting for the router to carry out the reviewers' decisions ...")
    third = await run.settle_reviews()
    return first and second and third


async def _settle_before_cps(run: _Run) -> bool:
    """Wait for act one, and in particular for the CPS to hold every case update it is sent."""
    settled = await run.settle("act one")
    wanted = {p.event_id for p in run.observed.published if p.event_type in story.CPS_WAITS_FOR}
    granted = {e for partner, e in run.observed.granted() if partner == "cps"}
    got = {r.event_id for r in run.observed.rendered if r.partner == "cps"}
    if not wanted & granted or not (wanted & granted) <= got:
        run.say("[red]the CPS did not receive the police's case updates[/]")
        return False
    return settled


async def _stop_router(run: _Run, stop: asyncio.Event) -> RouterStats:
    assert run.router is not None
    stop.set()
    try:
        return await asyncio.wait_for(run.router, 60)
    except TimeoutError as exc:
        raise TransportError("the router did not stop within 60s") from exc


async def purge(base: Settings, console: Console) -> int:
    """Delete every topic an earlier demo run left on Kafka."""
    async with kafka.admin_client(base) as admin:
        doomed = sorted(t for t in await admin.list_topics() if is_demo_topic(t))
    await kafka.delete_topics(base, doomed)
    runs = sorted({t.split(".", 1)[0] for t in doomed})
    console.print(f"deleted {len(doomed)} topic(s) of {len(runs)} demo run(s)")
    return 0


__all__ = ["DemoOptions", "purge", "run_demo"]
