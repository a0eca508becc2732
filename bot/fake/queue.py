"""Merge queues, as GitHub runs them for a branch whose ruleset requires one.

A pull request enters the queue (GraphQL ``enqueuePullRequest``, or a person's "Merge when
ready"); the queue builds its merge group: the PR merged onto the group ahead of it (or onto the
branch), pushed as ``gh-readonly-queue/<base>/pr-<n>-<parent sha>``, and announced with
``merge_group`` ``checks_requested``. Once the group's required checks pass (and every group
ahead has merged), the branch fast-forwards to the group's commit, the PR is closed as merged
and the group ``destroyed`` (``merged``). A failing required check, a push to the PR or its
closing takes it out of the queue (``destroyed``, ``dequeued``; ``pull_request`` ``dequeued``)
and the groups behind it are rebuilt (``destroyed``, ``invalidated``). The REST merge of a PR
into such a branch answers 405 "Changes must be made through the merge queue".

Modelled: grouping ALLGREEN (each PR's group is checked), merge methods MERGE, SQUASH, REBASE.
Not modelled: timeouts of required checks, jumping the queue, groups of several PRs.
"""

from __future__ import annotations

import time
from typing import Any

from bot.fake.gitobjects import Signature
from bot.fake.shapes import simple_commit
from bot.fake.state import (
    ApiError,
    MergeQueueRule,
    PullRequest,
    QueueEntry,
    Repo,
    User,
    iso,
    node_id,
)
from bot.fake.world import PASSING, WEB_FLOW, World

QUEUE_PREFIX = "refs/heads/gh-readonly-queue/"
MUST_QUEUE = "Changes must be made through the merge queue"
DOC = "https://docs.github.com/repositories/configuring-branches-and-merges-in-your-repository/configuring-pull-request-merges/managing-a-merge-queue"


class QueueError(Exception):
    """Why a pull request cannot enter the queue (a GraphQL ``UNPROCESSABLE`` error)."""


class MergeQueues:
    """The merge queues of every repository of a world (registered on its hooks)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.state = world.state
        self._moving: set[tuple[int, str]] = set()  # (repo id, branch) the queue is merging
        world.after_checks.append(self.checks_changed)
        world.after_branch_moves.append(self.branch_moved)
        world.after_pull_closed.append(self.pull_closed)
        world.merge_guards.append(self.refuse_direct_merge)

    # ---- configuration ---------------------------------------------------------------------
    def require(
        self,
        repo: Repo,
        branch: str,
        merge_method: str = "MERGE",
        required_checks: list[str] | None = None,
    ) -> MergeQueueRule:
        """A ruleset requiring a merge queue on ``branch`` (replaces an earlier one)."""
        if merge_method not in ("MERGE", "SQUASH", "REBASE"):
            raise ValueError("merge_method must be MERGE, SQUASH or REBASE")
        rule = MergeQueueRule(
            ruleset_id=self.state.ids.new("ruleset"),
            merge_method=merge_method,
            required_checks=list(required_checks or []),
        )
        repo.merge_queues[branch] = rule
        repo.queue.setdefault(branch, [])
        return rule

    def rules_json(self, repo: Repo, branch: str) -> list[dict[str, Any]]:
        """`GET /rules/branches/{branch}`: the active rules for a branch."""
        rule = repo.merge_queues.get(branch)
        if rule is None:
            return []
        source = {
            "ruleset_source_type": "Repository",
            "ruleset_source": repo.full_name,
            "ruleset_id": rule.ruleset_id,
        }
        out: list[dict[str, Any]] = [
            {
                "type": "merge_queue",
                "parameters": {
                    "check_response_timeout_minutes": 60,
                    "grouping_strategy": rule.grouping_strategy,
                    "max_entries_to_build": 5,
                    "max_entries_to_merge": 5,
                    "merge_method": rule.merge_method,
                    "min_entries_to_merge": 1,
                    "min_entries_to_merge_wait_minutes": 5,
                },
                **source,
            }
        ]
        if rule.required_checks:
            out.append(
                {
                    "type": "required_status_checks",
                    "parameters": {
                        "strict_required_status_checks_policy": False,
                        "required_status_checks": [{"context": c} for c in rule.required_checks],
                    },
                    **source,
                }
            )
        return out

    def required(self, repo: Repo, branch: str) -> list[str]:
        """Contexts a group must pass: the ruleset's and the branch protection's."""
        rule = repo.merge_queues.get(branch)
        names = list(rule.required_checks) if rule else []
        protection = repo.protection.get(branch)
        for context in protection.contexts if protection else []:
            if context not in names:
                names.append(context)
        return names

    # ---- entering and leaving --------------------------------------------------------------
    def refuse_direct_merge(self, repo: Repo, pr: PullRequest, admin: bool) -> None:
        """A merge into a queue branch goes through the queue (people with bypass excepted)."""
        if pr.base_ref in repo.merge_queues and not admin:
            raise ApiError(405, MUST_QUEUE, documentation_url=DOC)

    def enqueue(
        self, repo: Repo, pr: PullRequest, by: User, expected_head: str | None = None
    ) -> QueueEntry:
        """Add a pull request to its base branch's queue (and build its group)."""
        branch = pr.base_ref
        if branch not in repo.merge_queues:
            raise QueueError(f"Merge queue is not enabled for the {branch} branch")
        if pr.state != "open":
            raise QueueError("Pull request is closed")
        if pr.draft:
            raise QueueError("Pull request is in draft state")
        if expected_head is not None and expected_head != pr.head_sha:
            raise QueueError(
                f"Expected head oid {expected_head} does not match the pull request's head "
                f"{pr.head_sha}"
            )
        entries = repo.queue.setdefault(branch, [])
        if any(e.number == pr.number for e in entries):
            raise QueueError("Pull request is already in the merge queue")
        mergeable, _ = self.world.test_merge(repo, pr)
        if not mergeable:
            raise QueueError("Pull request is not mergeable: it has conflicts")
        # the branch's required checks pass on the PR before it may enter the queue
        missing = self.world.missing_required_check(repo, self.required(repo, branch), pr.head_sha)
        if missing is not None:
            raise QueueError(f'Required status check "{missing}" is expected.')
        entry = QueueEntry(
            id=self.state.ids.new("queue_entry"),
            number=pr.number,
            head_sha=pr.head_sha,
            enqueuer=by,
        )
        entries.append(entry)
        self.world.emit_pull(repo, pr, "enqueued", by)
        self.build(repo, branch)
        self.advance(repo, branch)
        return entry

    def dequeue(self, repo: Repo, branch: str, entry: QueueEntry, reason: str, by: User) -> None:
        """Take an entry out (its group ``dequeued``), and rebuild the groups behind it."""
        entries = repo.queue.get(branch, [])
        if entry not in entries:
            return
        entries.remove(entry)
        self.destroy(repo, branch, entry, "dequeued", by)
        pr = repo.prs.get(entry.number)
        if pr is not None:
            self.world.emit_pull(repo, pr, "dequeued", by, reason=reason)
        self.build(repo, branch)
        self.advance(repo, branch)

    def entry_json(self, repo: Repo, entry: QueueEntry) -> dict[str, Any]:
        """GraphQL ``MergeQueueEntry`` (the fields the fake knows)."""
        entries = repo.queue.get(self.branch_of(repo, entry) or "", [])
        position = entries.index(entry) + 1 if entry in entries else None
        return {
            "id": node_id("MergeQueueEntry", entry.id),
            "position": position,
            "state": "AWAITING_CHECKS" if entry.group_sha else "QUEUED",
            "enqueuedAt": iso(entry.enqueued_at),
            "headCommit": {"oid": entry.group_sha},
            "baseCommit": {"oid": entry.base_sha},
        }

    def branch_of(self, repo: Repo, entry: QueueEntry) -> str | None:
        for branch, entries in repo.queue.items():
            if entry in entries:
                return branch
        return None

    # ---- groups ----------------------------------------------------------------------------
    def build(self, repo: Repo, branch: str) -> None:
        """Make every entry's group sit on the one ahead (or on the branch); rebuild those
        that do not (``destroyed``, ``invalidated``), dropping entries that conflict."""
        parent = repo.branch_sha(branch)
        assert parent is not None
        for entry in list(repo.queue.get(branch, [])):
            if entry.group_sha is not None and entry.base_sha == parent:
                parent = entry.group_sha
                continue
            if entry.group_sha is not None:
                self.destroy(repo, branch, entry, "invalidated", entry.enqueuer)
            pr = repo.prs[entry.number]
            sha = self.group_commit(repo, pr, parent, repo.merge_queues[branch].merge_method)
            if sha is None:
                repo.queue[branch].remove(entry)
                self.world.emit_pull(repo, pr, "dequeued", entry.enqueuer, reason="MERGE_CONFLICT")
                continue
            entry.group_sha, entry.base_sha = sha, parent
            entry.ref = f"{QUEUE_PREFIX}{branch}/pr-{pr.number}-{parent}"
            self.world.set_ref(repo, entry.ref, sha, pusher=entry.enqueuer, force=True)
            self.emit_group(repo, branch, entry, "checks_requested", entry.enqueuer)
            parent = sha

    def group_commit(self, repo: Repo, pr: PullRequest, parent: str, method: str) -> str | None:
        """The PR's changes on top of ``parent``, the way the queue's merge method writes them."""
        store = self.world.objects
        now = int(time.time())
        committer = Signature(WEB_FLOW.name, WEB_FLOW.email, now)
        if method == "REBASE":
            tip = parent
            for c in self.world.pull_commits(repo, pr):
                before = store.commits[c.parents[0]].tree if c.parents else None
                merged = store.merge_trees(before, store.commits[tip].tree, c.tree)
                if merged.tree is None:
                    return None
                tip = store.put_commit(merged.tree, [tip], c.author, committer, c.message)
            return tip
        base = store.merge_base(parent, pr.head_sha)
        merged = store.merge_trees(
            store.commits[base].tree if base else None,
            store.commits[parent].tree,
            store.commits[pr.head_sha].tree,
        )
        if merged.tree is None:
            return None
        if method == "SQUASH":
            body = "\n\n".join(f"* {c.message.strip()}" for c in self.world.pull_commits(repo, pr))
            text = f"{pr.title} (#{pr.number})\n\n{body}".rstrip() + "\n"
            return store.put_commit(
                merged.tree, [parent], self.world.signature(pr.user, now), committer, text
            )
        head_label = f"{repo.owner.login}/{pr.head_ref}"
        text = f"Merge pull request #{pr.number} from {head_label}\n\n{pr.title}".rstrip() + "\n"
        return store.put_commit(
            merged.tree, [parent, pr.head_sha], self.world.signature(pr.user, now), committer, text
        )

    def emit_group(
        self, repo: Repo, branch: str, entry: QueueEntry, action: str, by: User, **extra: Any
    ) -> None:
        """A ``merge_group`` event, to apps with the merge queues permission."""
        assert entry.group_sha is not None and entry.ref is not None
        c = self.world.objects.commits[entry.group_sha]
        group = {
            "head_sha": entry.group_sha,
            "head_ref": entry.ref,
            "base_sha": entry.base_sha,
            "base_ref": f"refs/heads/{branch}",
            "head_commit": simple_commit(c),
        }
        self.world.emit(
            "merge_group",
            action,
            {"merge_group": group, **extra},
            sender=by,
            repo=repo,
            permission="merge_queues",
        )

    def destroy(self, repo: Repo, branch: str, entry: QueueEntry, reason: str, by: User) -> None:
        """Announce a group's end and delete its branch."""
        if entry.group_sha is None or entry.ref is None:
            return
        self.emit_group(repo, branch, entry, "destroyed", by, reason=reason)
        if entry.ref in repo.refs:
            self.world.set_ref(repo, entry.ref, None, pusher=by, force=True)
        entry.group_sha = entry.base_sha = entry.ref = None

    # ---- checks and merging ----------------------------------------------------------------
    def verdict(self, repo: Repo, branch: str, sha: str) -> str:
        """``success`` when every required context passed on ``sha``, ``failure`` when one
        failed, else ``pending``."""
        statuses = {s.context: s.state for s in self.world.latest_statuses(repo, sha)}
        runs = {r.name: r for r in self.world.latest_runs(repo, sha)}
        result = "success"
        for context in self.required(repo, branch):
            state = statuses.get(context)
            run = runs.get(context)
            if state == "success" or (
                run is not None and run.status == "completed" and run.conclusion in PASSING
            ):
                continue
            if state in ("failure", "error") or (run is not None and run.status == "completed"):
                return "failure"
            result = "pending"
        return result

    def advance(self, repo: Repo, branch: str) -> None:
        """Merge the groups at the front whose checks passed; take out those that failed."""
        entries = repo.queue.get(branch, [])
        while entries:
            first = entries[0]
            if first.group_sha is None:
                return
            verdict = self.verdict(repo, branch, first.group_sha)
            if verdict == "pending":
                return
            if verdict == "failure":
                self.dequeue(repo, branch, first, "CI_FAILURE", first.enqueuer)
                return
            self.merge(repo, branch, first)

    def merge(self, repo: Repo, branch: str, entry: QueueEntry) -> None:
        """Fast-forward the branch to the group's commit; the PR is merged."""
        assert entry.group_sha is not None
        pr = repo.prs[entry.number]
        repo.queue[branch].remove(entry)
        now = time.time()
        pr.merged = True
        pr.merged_at = pr.closed_at = pr.updated_at = now
        pr.merged_by = pr.closed_by = entry.enqueuer
        pr.merge_commit_sha = entry.group_sha
        pr.base_sha = repo.branch_sha(branch) or pr.base_sha
        pr.state = "closed"
        self.world.emit_pull(repo, pr, "closed", entry.enqueuer)
        key = (repo.id, branch)
        self._moving.add(key)
        try:
            self.world.set_ref(
                repo, f"refs/heads/{branch}", entry.group_sha, pusher=entry.enqueuer, force=False
            )
        finally:
            self._moving.discard(key)
        self.destroy(repo, branch, entry, "merged", entry.enqueuer)

    # ---- hooks -----------------------------------------------------------------------------
    def checks_changed(self, repo: Repo, sha: str) -> None:
        """A status or check run changed on ``sha``: a group there may merge or fail now."""
        for branch, entries in list(repo.queue.items()):
            if any(e.group_sha == sha for e in entries):
                self.advance(repo, branch)

    def branch_moved(self, repo: Repo, branch: str, sha: str | None, by: User) -> None:
        """A queued PR's head moved (out of the queue), or the base moved under the queue
        (every group rebuilt on the new tip)."""
        for base, entries in list(repo.queue.items()):
            for entry in list(entries):
                pr = repo.prs.get(entry.number)
                if pr is not None and pr.head_ref == branch and pr.head_sha != entry.head_sha:
                    self.dequeue(repo, base, entry, "MANUAL", by)
        if branch in repo.queue and (repo.id, branch) not in self._moving and sha is not None:
            self.build(repo, branch)
            self.advance(repo, branch)

    def pull_closed(self, repo: Repo, pr: PullRequest, by: User) -> None:
        entries = repo.queue.get(pr.base_ref, [])
        for entry in list(entries):
            if entry.number == pr.number:
                self.dequeue(repo, pr.base_ref, entry, "MANUAL", by)
