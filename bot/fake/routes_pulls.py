"""REST routes for pull requests, reviews, issues, comments, checks, statuses, teams,
collaborators and branch protection."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bot.fake.server import IDENTITY, Api, json_response, parse_time, read_json
from bot.fake.state import (
    ApiError,
    CheckRun,
    Issue,
    Org,
    PullRequest,
    Repo,
    not_found,
    validation_failed,
)

DOC_CHECKS = "https://docs.github.com/rest/checks/runs"
RUN_STATUSES = ("queued", "in_progress", "completed")
CONCLUSIONS = (
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
)
TEXT_LIMIT = 65535


class PullRoutes:
    """Handlers for the collaboration surface of a repository."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.world = api.world
        self.state = api.state
        self.shapes = api.shapes

    def register(self) -> None:
        """Declare routes; numbers are digits so `/issues/comments/...` never shadows."""
        add = self.api.add
        r = "/repos/{owner}/{repo}"
        pr_w = ("pull_requests", "write")
        pr_r = ("pull_requests", "read")
        add("POST", r + "/pulls", self.create_pull, perm=pr_w)
        add("GET", r + "/pulls", self.list_pulls, perm=pr_r)
        add("GET", r + r"/pulls/{n:\d+}", self.get_pull, perm=pr_r)
        add("PATCH", r + r"/pulls/{n:\d+}", self.update_pull, perm=pr_w)
        add("GET", r + r"/pulls/{n:\d+}/files", self.pull_files, perm=pr_r)
        add("GET", r + r"/pulls/{n:\d+}/commits", self.pull_commits, perm=pr_r)
        add("GET", r + r"/pulls/{n:\d+}/reviews", self.list_reviews, perm=pr_r)
        add("POST", r + r"/pulls/{n:\d+}/reviews", self.create_review, perm=pr_w)
        add("GET", r + r"/pulls/{n:\d+}/reviews/{rid:\d+}", self.get_review, perm=pr_r)
        add("PUT", r + r"/pulls/{n:\d+}/reviews/{rid:\d+}", self.update_review, perm=pr_w)
        add(
            "PUT",
            r + r"/pulls/{n:\d+}/reviews/{rid:\d+}/dismissals",
            self.dismiss_review,
            perm=pr_w,
        )
        add("PUT", r + r"/pulls/{n:\d+}/merge", self.merge_pull, perm=("contents", "write"))
        add("GET", r + r"/pulls/{n:\d+}/merge", self.is_merged, perm=pr_r)
        add("GET", r + r"/pulls/{n:\d+}/requested_reviewers", self.get_requested, perm=pr_r)
        add("POST", r + r"/pulls/{n:\d+}/requested_reviewers", self.request_reviewers, perm=pr_w)
        add("DELETE", r + r"/pulls/{n:\d+}/requested_reviewers", self.remove_reviewers, perm=pr_w)

        iss_w = ("issues|pull_requests", "write")
        iss_r = ("issues|pull_requests", "read")
        add("GET", r + r"/issues/comments/{cid:\d+}", self.get_comment, perm=iss_r)
        add("PATCH", r + r"/issues/comments/{cid:\d+}", self.update_comment, perm=iss_w)
        add("GET", r + r"/issues/comments/{cid:\d+}/reactions", self.list_reactions, perm=iss_r)
        add("POST", r + r"/issues/comments/{cid:\d+}/reactions", self.create_reaction, perm=iss_w)
        add("POST", r + "/issues", self.create_issue, perm=("issues", "write"))
        add("GET", r + "/issues", self.list_issues, perm=("issues", "read"))
        add("GET", r + r"/issues/{n:\d+}", self.get_issue, perm=iss_r)
        add("PATCH", r + r"/issues/{n:\d+}", self.update_issue, perm=iss_w)
        add("GET", r + r"/issues/{n:\d+}/comments", self.list_comments, perm=iss_r)
        add("POST", r + r"/issues/{n:\d+}/comments", self.create_comment, perm=iss_w)
        add("GET", r + r"/issues/{n:\d+}/labels", self.list_labels, perm=iss_r)
        add("POST", r + r"/issues/{n:\d+}/labels", self.add_labels, perm=iss_w)
        add("PUT", r + r"/issues/{n:\d+}/labels", self.set_labels, perm=iss_w)
        add("DELETE", r + r"/issues/{n:\d+}/labels/{name}", self.remove_label, perm=iss_w)

        add("POST", r + "/check-runs", self.create_run, auth="token", perm=("checks", "write"))
        add("GET", r + r"/check-runs/{id:\d+}", self.get_run, perm=("checks", "read"))
        add(
            "PATCH",
            r + r"/check-runs/{id:\d+}",
            self.update_run,
            auth="token",
            perm=("checks", "write"),
        )
        add(
            "GET",
            r + r"/check-runs/{id:\d+}/annotations",
            self.run_annotations,
            perm=("checks", "read"),
        )
        add(
            "POST",
            r + r"/check-runs/{id:\d+}/rerequest",
            self.rerequest_run,
            auth="token",
            perm=("checks", "write"),
        )
        add("GET", r + r"/check-suites/{id:\d+}", self.get_suite, perm=("checks", "read"))
        add(
            "GET",
            r + r"/check-suites/{id:\d+}/check-runs",
            self.suite_runs,
            perm=("checks", "read"),
        )
        add(
            "POST",
            r + r"/check-suites/{id:\d+}/rerequest",
            self.rerequest_suite,
            auth="token",
            perm=("checks", "write"),
        )
        add("GET", r + "/commits/{ref:.+}/check-runs", self.ref_runs, perm=("checks", "read"))
        add("GET", r + "/commits/{ref:.+}/check-suites", self.ref_suites, perm=("checks", "read"))
        add("POST", r + "/statuses/{sha}", self.create_status, perm=("statuses", "write"))
        add("GET", r + "/commits/{ref:.+}/statuses", self.list_statuses, perm=("statuses", "read"))
        add("GET", r + "/commits/{ref:.+}/status", self.combined_status, perm=("statuses", "read"))

        add("GET", "/orgs/{org}/teams", self.list_teams)
        add("GET", "/orgs/{org}/teams/{slug}", self.get_team)
        add("GET", "/orgs/{org}/teams/{slug}/members", self.team_members)
        add("GET", "/orgs/{org}/teams/{slug}/memberships/{user}", self.team_membership)
        add(
            "GET",
            r + "/collaborators/{user}/permission",
            self.collaborator_permission,
            perm=("metadata", "read"),
        )
        add("GET", r + "/collaborators/{user}", self.is_collaborator, perm=("metadata", "read"))
        add(
            "GET",
            r + "/branches/{branch:.+}/protection/required_status_checks",
            self.required_checks,
            perm=("administration", "read"),
        )

    # ---- helpers ---------------------------------------------------------------------------
    def pr(self, request: web.Request) -> tuple[Repo, PullRequest]:
        repo = self.api.repo_of(request)
        return repo, self.world.need_pull(repo, int(request.match_info["n"]))

    def issue(self, request: web.Request) -> tuple[Repo, Issue]:
        repo = self.api.repo_of(request)
        return repo, self.world.need_issue(repo, int(request.match_info["n"]))

    # ---- pulls -----------------------------------------------------------------------------
    async def create_pull(self, request: web.Request) -> web.Response:
        """`POST /pulls`."""
        repo = self.api.repo_of(request)
        body = await read_json(request)
        for key in ("head", "base"):
            if not isinstance(body.get(key), str):
                raise validation_failed(
                    errors=[{"resource": "PullRequest", "field": key, "code": "missing_field"}]
                )
        pr = self.world.open_pull(
            repo,
            body["head"],
            body["base"],
            str(body.get("title") or ""),
            body.get("body"),
            self.api.actor(request),
            draft=bool(body.get("draft")),
            via_app=self.api.via_app(request),
        )
        out = self.world.pull_json(repo, pr, observe=False)
        return json_response(out, 201, headers={"Location": out["url"]})

    async def list_pulls(self, request: web.Request) -> web.Response:
        """`GET /pulls?state=&head=owner:branch&base=&sort=&direction=`."""
        repo = self.api.repo_of(request)
        q = request.query
        state = q.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise validation_failed(
                errors=[{"resource": "PullRequest", "field": "state", "code": "invalid"}]
            )
        pulls = [p for p in repo.prs.values() if state == "all" or p.state == state]
        if q.get("head"):
            owner, _, branch = q["head"].rpartition(":")
            pulls = [
                p
                for p in pulls
                if p.head_ref == branch and (not owner or owner.lower() == repo.owner.login.lower())
            ]
        if q.get("base"):
            pulls = [p for p in pulls if p.base_ref == q["base"]]
        sort = q.get("sort", "created")
        key = {"updated": lambda p: p.updated_at, "popularity": lambda p: len(p.comments)}.get(
            sort, lambda p: (p.created_at, p.number)
        )
        direction = q.get("direction", "desc" if sort == "created" else "asc")
        pulls.sort(key=key, reverse=direction == "desc")
        page, headers = self.api.paginate(request, pulls)
        return json_response([self.shapes.pull_simple(repo, p) for p in page], headers=headers)

    async def get_pull(self, request: web.Request) -> web.Response:
        """`GET /pulls/{n}`: `mergeable` is null on the first read after head/base moved."""
        repo, pr = self.pr(request)
        return json_response(self.world.pull_json(repo, pr, observe=True))

    async def update_pull(self, request: web.Request) -> web.Response:
        """`PATCH /pulls/{n}` (title, body, state, base)."""
        repo, pr = self.pr(request)
        body = await read_json(request)
        if "state" in body and body["state"] not in ("open", "closed"):
            raise validation_failed(
                errors=[{"resource": "PullRequest", "field": "state", "code": "invalid"}]
            )
        self.world.edit_pull(repo, pr, body, self.api.actor(request))
        return json_response(self.world.pull_json(repo, pr, observe=False))

    async def pull_files(self, request: web.Request) -> web.Response:
        """`GET /pulls/{n}/files` (paginated, at most 3000)."""
        repo, pr = self.pr(request)
        page, headers = self.api.paginate(request, self.world.pull_files(repo, pr))
        return json_response(page, headers=headers)

    async def pull_commits(self, request: web.Request) -> web.Response:
        """`GET /pulls/{n}/commits` (paginated, at most 250)."""
        repo, pr = self.pr(request)
        page, headers = self.api.paginate(request, self.world.pull_commits(repo, pr))
        return json_response([self.shapes.commit(repo, c) for c in page], headers=headers)

    async def list_reviews(self, request: web.Request) -> web.Response:
        """`GET /pulls/{n}/reviews` in chronological order (pending ones only to their author)."""
        repo, pr = self.pr(request)
        actor = request[IDENTITY].actor
        reviews = [r for r in pr.reviews if r.state != "PENDING" or r.user is actor]
        page, headers = self.api.paginate(request, reviews)
        return json_response([self.shapes.review(repo, pr, r) for r in page], headers=headers)

    async def create_review(self, request: web.Request) -> web.Response:
        """`POST /pulls/{n}/reviews` (422 for approving one's own PR)."""
        repo, pr = self.pr(request)
        body = await read_json(request)
        event = body.get("event")
        review = self.world.submit_review(
            repo,
            pr,
            self.api.actor(request),
            event or "PENDING",
            str(body.get("body") or ""),
            body.get("commit_id"),
        )
        return json_response(self.shapes.review(repo, pr, review))

    async def get_review(self, request: web.Request) -> web.Response:
        """`GET /pulls/{n}/reviews/{id}`."""
        repo, pr = self.pr(request)
        review = self.world.need_review(pr, int(request.match_info["rid"]))
        return json_response(self.shapes.review(repo, pr, review))

    async def update_review(self, request: web.Request) -> web.Response:
        """`PUT /pulls/{n}/reviews/{id}`: change the body (`edited`)."""
        repo, pr = self.pr(request)
        review = self.world.need_review(pr, int(request.match_info["rid"]))
        body = await read_json(request)
        if not isinstance(body.get("body"), str):
            raise validation_failed(
                errors=[{"resource": "PullRequestReview", "field": "body", "code": "missing_field"}]
            )
        self.world.edit_review(repo, pr, review, body["body"], self.api.actor(request))
        return json_response(self.shapes.review(repo, pr, review))

    async def dismiss_review(self, request: web.Request) -> web.Response:
        """`PUT /pulls/{n}/reviews/{id}/dismissals`."""
        repo, pr = self.pr(request)
        review = self.world.need_review(pr, int(request.match_info["rid"]))
        body = await read_json(request)
        if not isinstance(body.get("message"), str):
            raise validation_failed(
                errors=[
                    {"resource": "PullRequestReview", "field": "message", "code": "missing_field"}
                ]
            )
        self.world.dismiss_review(repo, pr, review, self.api.actor(request), body["message"])
        return json_response(self.shapes.review(repo, pr, review))

    async def merge_pull(self, request: web.Request) -> web.Response:
        """`PUT /pulls/{n}/merge` with GitHub's 405/409 rules."""
        repo, pr = self.pr(request)
        body = await read_json(request)
        sha = self.world.merge_pull(
            repo,
            pr,
            self.api.actor(request),
            method=str(body.get("merge_method") or "merge"),
            sha=body.get("sha"),
            title=body.get("commit_title"),
            message=body.get("commit_message"),
        )
        return json_response(
            {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}
        )

    async def is_merged(self, request: web.Request) -> web.Response:
        """`GET /pulls/{n}/merge`: 204 when merged, else 404."""
        _, pr = self.pr(request)
        if not pr.merged:
            raise not_found()
        return web.Response(status=204)

    async def get_requested(self, request: web.Request) -> web.Response:
        """`GET /pulls/{n}/requested_reviewers`."""
        _, pr = self.pr(request)
        return json_response(
            {
                "users": [self.shapes.user(u) for u in pr.requested_reviewers],
                "teams": [self.shapes.team(t) for t in pr.requested_teams],
            }
        )

    async def request_reviewers(self, request: web.Request) -> web.Response:
        """`POST /pulls/{n}/requested_reviewers`."""
        return await self._reviewers(request, remove=False)

    async def remove_reviewers(self, request: web.Request) -> web.Response:
        """`DELETE /pulls/{n}/requested_reviewers`."""
        return await self._reviewers(request, remove=True)

    async def _reviewers(self, request: web.Request, remove: bool) -> web.Response:
        repo, pr = self.pr(request)
        body = await read_json(request)
        users = [str(u) for u in body.get("reviewers") or []]
        teams = [str(t) for t in body.get("team_reviewers") or []]
        self.world.request_reviewers(repo, pr, users, teams, self.api.actor(request), remove=remove)
        return json_response(self.shapes.pull_simple(repo, pr), 200 if remove else 201)

    # ---- issues and comments ---------------------------------------------------------------
    async def create_issue(self, request: web.Request) -> web.Response:
        """`POST /issues`."""
        repo = self.api.repo_of(request)
        body = await read_json(request)
        actor = self.api.actor(request)
        issue = self.world.create_issue(
            repo,
            str(body.get("title") or ""),
            body.get("body"),
            actor,
            via_app=self.api.via_app(request),
        )
        if body.get("labels"):
            self.world.add_labels(repo, issue, _label_names(body["labels"]), actor)
        out = self.shapes.issue(repo, issue)
        return json_response(out, 201, headers={"Location": out["url"]})

    async def list_issues(self, request: web.Request) -> web.Response:
        """`GET /issues?state=&creator=&labels=` (PRs included, with a `pull_request` key)."""
        repo = self.api.repo_of(request)
        q = request.query
        state = q.get("state", "open")
        issues = [i for i in repo.issues.values() if state == "all" or i.state == state]
        if q.get("creator"):
            issues = [i for i in issues if i.user.login.lower() == q["creator"].lower()]
        if q.get("labels"):
            wanted = {n.strip().lower() for n in q["labels"].split(",") if n.strip()}
            issues = [i for i in issues if wanted <= {lb.name.lower() for lb in i.labels}]
        if q.get("since"):
            since = parse_time(q["since"], "since")
            issues = [i for i in issues if i.updated_at >= since]
        issues.sort(
            key=lambda i: (i.created_at, i.number), reverse=q.get("direction", "desc") == "desc"
        )
        page, headers = self.api.paginate(request, issues)
        return json_response([self.shapes.issue(repo, i) for i in page], headers=headers)

    async def get_issue(self, request: web.Request) -> web.Response:
        """`GET /issues/{n}`."""
        repo, issue = self.issue(request)
        return json_response(self.shapes.issue(repo, issue))

    async def update_issue(self, request: web.Request) -> web.Response:
        """`PATCH /issues/{n}`."""
        repo, issue = self.issue(request)
        body = await read_json(request)
        if "labels" in body:
            body["labels"] = _label_names(body["labels"])
        self.world.edit_issue(repo, issue, body, self.api.actor(request))
        return json_response(self.shapes.issue(repo, issue))

    async def list_comments(self, request: web.Request) -> web.Response:
        """`GET /issues/{n}/comments` (oldest first, paginated)."""
        repo, issue = self.issue(request)
        comments = list(issue.comments)
        if request.query.get("since"):
            since = parse_time(request.query["since"], "since")
            comments = [c for c in comments if c.updated_at >= since]
        page, headers = self.api.paginate(request, comments)
        return json_response([self.shapes.comment(repo, c) for c in page], headers=headers)

    async def create_comment(self, request: web.Request) -> web.Response:
        """`POST /issues/{n}/comments` (authored by `<slug>[bot]` for installation tokens)."""
        repo, issue = self.issue(request)
        body = await read_json(request)
        if not isinstance(body.get("body"), str):
            raise validation_failed(
                errors=[{"resource": "IssueComment", "field": "body", "code": "missing_field"}]
            )
        comment = self.world.add_comment(
            repo, issue, self.api.actor(request), body["body"], via_app=self.api.via_app(request)
        )
        out = self.shapes.comment(repo, comment)
        return json_response(out, 201, headers={"Location": out["url"]})

    async def get_comment(self, request: web.Request) -> web.Response:
        """`GET /issues/comments/{id}`."""
        repo = self.api.repo_of(request)
        _, comment = self.world.find_comment(repo, int(request.match_info["cid"]))
        return json_response(self.shapes.comment(repo, comment))

    async def update_comment(self, request: web.Request) -> web.Response:
        """`PATCH /issues/comments/{id}` (only the author may edit, as for bots on GitHub)."""
        repo = self.api.repo_of(request)
        body = await read_json(request)
        if not isinstance(body.get("body"), str):
            raise validation_failed(
                errors=[{"resource": "IssueComment", "field": "body", "code": "missing_field"}]
            )
        actor = self.api.actor(request)
        _, existing = self.world.find_comment(repo, int(request.match_info["cid"]))
        if existing.user is not actor and not self.state.can_write(repo, actor):
            raise ApiError(403, "Resource not accessible by integration")
        comment = self.world.edit_comment(repo, existing.id, body["body"], actor)
        return json_response(self.shapes.comment(repo, comment))

    async def list_reactions(self, request: web.Request) -> web.Response:
        """`GET /issues/comments/{id}/reactions`."""
        repo = self.api.repo_of(request)
        _, comment = self.world.find_comment(repo, int(request.match_info["cid"]))
        reactions = comment.reactions
        if request.query.get("content"):
            reactions = [r for r in reactions if r.content == request.query["content"]]
        page, headers = self.api.paginate(request, reactions)
        return json_response([self.shapes.reaction(r) for r in page], headers=headers)

    async def create_reaction(self, request: web.Request) -> web.Response:
        """`POST /issues/comments/{id}/reactions`: 201 new, 200 when it already existed."""
        repo = self.api.repo_of(request)
        body = await read_json(request)
        reaction, created = self.world.add_reaction(
            repo, int(request.match_info["cid"]), self.api.actor(request), str(body.get("content"))
        )
        return json_response(self.shapes.reaction(reaction), 201 if created else 200)

    async def list_labels(self, request: web.Request) -> web.Response:
        """`GET /issues/{n}/labels`."""
        repo, issue = self.issue(request)
        page, headers = self.api.paginate(request, issue.labels)
        return json_response([self.shapes.label(repo, lb) for lb in page], headers=headers)

    async def add_labels(self, request: web.Request) -> web.Response:
        """`POST /issues/{n}/labels` (`{"labels": [...]}` or a bare array)."""
        repo, issue = self.issue(request)
        raw = await request.read()
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ApiError(400, "Problems parsing JSON") from None
        names = _label_names(data.get("labels") if isinstance(data, dict) else data)
        if not names:
            raise validation_failed(
                errors=[{"resource": "Label", "field": "labels", "code": "missing_field"}]
            )
        self.world.add_labels(repo, issue, names, self.api.actor(request))
        return json_response([self.shapes.label(repo, lb) for lb in issue.labels])

    async def set_labels(self, request: web.Request) -> web.Response:
        """`PUT /issues/{n}/labels`: replace all labels."""
        repo, issue = self.issue(request)
        body = await read_json(request)
        self.world.set_labels(
            repo, issue, _label_names(body.get("labels") or []), self.api.actor(request)
        )
        return json_response([self.shapes.label(repo, lb) for lb in issue.labels])

    async def remove_label(self, request: web.Request) -> web.Response:
        """`DELETE /issues/{n}/labels/{name}`: the remaining labels, or 404."""
        repo, issue = self.issue(request)
        self.world.remove_label(repo, issue, request.match_info["name"], self.api.actor(request))
        return json_response([self.shapes.label(repo, lb) for lb in issue.labels])

    # ---- checks ----------------------------------------------------------------------------
    def run_fields(self, body: dict[str, Any], creating: bool) -> dict[str, Any]:
        """Validate a check-run body as GitHub does (enums, limits, annotation fields)."""
        doc = f"{DOC_CHECKS}#{'create' if creating else 'update'}-a-check-run"

        def invalid(field: str, code: str = "invalid") -> ApiError:
            return validation_failed(
                errors=[{"resource": "CheckRun", "field": field, "code": code}], doc=doc
            )

        fields: dict[str, Any] = {}
        if creating:
            for key in ("name", "head_sha"):
                if not isinstance(body.get(key), str) or not body[key]:
                    raise invalid(key, "missing_field")
        for key in ("name", "head_sha", "details_url", "external_id"):
            if key in body:
                fields[key] = body[key]
        status = body.get("status")
        if status is not None:
            if status not in RUN_STATUSES:
                raise invalid("status")
            fields["status"] = status
        conclusion = body.get("conclusion")
        if conclusion is not None:
            if conclusion not in CONCLUSIONS or conclusion == "stale":
                raise invalid("conclusion")
            fields["conclusion"] = conclusion
        if (status == "completed" or body.get("completed_at")) and conclusion is None:
            raise validation_failed(
                'Invalid request.\n\nNo subschema in "anyOf" matched.\n'
                '"conclusion" wasn\'t supplied.',
                errors=[{"resource": "CheckRun", "field": "conclusion", "code": "missing_field"}],
                doc=doc,
            )
        for key in ("started_at", "completed_at"):
            if body.get(key):
                fields[key] = parse_time(body[key], key)
        output = body.get("output")
        if output is not None:
            if not isinstance(output, dict):
                raise invalid("output")
            for key in ("title", "summary"):
                if not isinstance(output.get(key), str):
                    raise invalid(f"output.{key}", "missing_field")
            for key in ("summary", "text"):
                value = output.get(key)
                if value is not None and (not isinstance(value, str) or len(value) > TEXT_LIMIT):
                    raise validation_failed(
                        f"Invalid request.\n\nOnly {TEXT_LIMIT} characters are allowed; "
                        f"{len(str(value))} were supplied.",
                        errors=[
                            {"resource": "CheckRun", "field": f"output.{key}", "code": "too_long"}
                        ],
                        doc=doc,
                    )
            annotations = output.get("annotations") or []
            if not isinstance(annotations, list) or len(annotations) > 50:
                raise validation_failed(
                    "Invalid request.\n\nOnly 50 annotations are allowed per request.",
                    errors=[
                        {"resource": "CheckRun", "field": "output.annotations", "code": "too_long"}
                    ],
                    doc=doc,
                )
            for a in annotations:
                self.check_annotation(a, doc)
            fields["output"] = output
        actions = body.get("actions")
        if actions is not None:
            if not isinstance(actions, list) or len(actions) > 3:
                raise invalid("actions", "too_long")
            for a in actions:
                limits = {"label": 20, "description": 40, "identifier": 20}
                if not isinstance(a, dict) or any(
                    not isinstance(a.get(k), str) or len(a[k]) > n for k, n in limits.items()
                ):
                    raise invalid("actions")
            fields["actions"] = actions
        return fields

    def check_annotation(self, a: Any, doc: str) -> None:
        """One annotation: required fields, level enum, sizes, columns only on one line."""

        def bad(field: str, code: str = "invalid") -> ApiError:
            return validation_failed(
                errors=[
                    {"resource": "CheckRun", "field": f"output.annotations.{field}", "code": code}
                ],
                doc=doc,
            )

        if not isinstance(a, dict):
            raise bad("annotation")
        for key in ("path", "message", "annotation_level"):
            if not isinstance(a.get(key), str) or not a[key]:
                raise bad(key, "missing_field")
        for key in ("start_line", "end_line"):
            if not isinstance(a.get(key), int) or a[key] < 1:
                raise bad(key, "missing_field")
        if a["annotation_level"] not in ("notice", "warning", "failure"):
            raise bad("annotation_level")
        if a["end_line"] < a["start_line"]:
            raise bad("end_line")
        if ("start_column" in a or "end_column" in a) and a["start_line"] != a["end_line"]:
            raise bad("start_column")
        if (
            len(a["message"].encode()) > 64 * 1024
            or len(str(a.get("raw_details") or "").encode()) > 64 * 1024
        ):
            raise bad("message", "too_long")
        if len(str(a.get("title") or "")) > 255:
            raise bad("title", "too_long")

    def need_run(self, request: web.Request) -> tuple[Repo, CheckRun]:
        repo = self.api.repo_of(request)
        run = repo.check_runs.get(int(request.match_info["id"]))
        if run is None:
            raise not_found()
        return repo, run

    def own_app_check(self, request: web.Request, app_id: int) -> None:
        """Only the app owning a run or suite may change it."""
        inst = request[IDENTITY].installation
        if inst is None or inst.app.id != app_id:
            raise ApiError(
                403,
                f"Invalid app_id `{inst.app.id if inst else 0}` - check run can only be modified "
                "by the GitHub App that created it.",
            )

    async def create_run(self, request: web.Request) -> web.Response:
        """`POST /check-runs` (installation tokens only)."""
        repo = self.api.repo_of(request)
        body = await read_json(request)
        fields = self.run_fields(body, creating=True)
        if fields["head_sha"] not in self.world.objects.commits:
            raise validation_failed(
                "No commit found for SHA: " + str(fields["head_sha"]),
                errors=[{"resource": "CheckRun", "field": "head_sha", "code": "invalid"}],
            )
        inst = request[IDENTITY].installation
        assert inst is not None
        run = self.world.create_check_run(repo, inst.app, fields)
        return json_response(self.world.run_json(repo, run), 201)

    async def get_run(self, request: web.Request) -> web.Response:
        """`GET /check-runs/{id}`."""
        repo, run = self.need_run(request)
        return json_response(self.world.run_json(repo, run))

    async def update_run(self, request: web.Request) -> web.Response:
        """`PATCH /check-runs/{id}` (owning app only; annotations append)."""
        repo, run = self.need_run(request)
        self.own_app_check(request, run.app.id)
        body = await read_json(request)
        fields = self.run_fields(body, creating=False)
        self.world.update_check_run(repo, run, fields)
        return json_response(self.world.run_json(repo, run))

    async def run_annotations(self, request: web.Request) -> web.Response:
        """`GET /check-runs/{id}/annotations`."""
        repo, run = self.need_run(request)
        web = f"{self.shapes.urls.web}/{repo.full_name}"
        items = [
            {
                "path": a["path"],
                "start_line": a["start_line"],
                "end_line": a["end_line"],
                "start_column": a.get("start_column"),
                "end_column": a.get("end_column"),
                "annotation_level": a["annotation_level"],
                "title": a.get("title"),
                "message": a["message"],
                "raw_details": a.get("raw_details"),
                "blob_href": f"{web}/blob/{run.head_sha}/{a['path']}",
            }
            for a in run.annotations
        ]
        page, headers = self.api.paginate(request, items)
        return json_response(page, headers=headers)

    async def rerequest_run(self, request: web.Request) -> web.Response:
        """`POST /check-runs/{id}/rerequest`: 201 and `check_run.rerequested`."""
        repo, run = self.need_run(request)
        self.own_app_check(request, run.app.id)
        self.world.rerequest_run(repo, run, self.api.actor(request))
        return json_response({}, 201)

    def need_suite(self, request: web.Request) -> Any:
        repo = self.api.repo_of(request)
        suite = repo.check_suites.get(int(request.match_info["id"]))
        if suite is None:
            raise not_found()
        return repo, suite

    async def get_suite(self, request: web.Request) -> web.Response:
        """`GET /check-suites/{id}`."""
        repo, suite = self.need_suite(request)
        return json_response(self.world.suite_json(repo, suite))

    async def suite_runs(self, request: web.Request) -> web.Response:
        """`GET /check-suites/{id}/check-runs`."""
        repo, suite = self.need_suite(request)
        runs = [repo.check_runs[i] for i in reversed(suite.run_ids)]
        return self.runs_page(request, repo, runs)

    async def rerequest_suite(self, request: web.Request) -> web.Response:
        """`POST /check-suites/{id}/rerequest`: 201 and `check_suite.rerequested`."""
        repo, suite = self.need_suite(request)
        self.own_app_check(request, suite.app.id)
        self.world.rerequest_suite(repo, suite, self.api.actor(request))
        return json_response({}, 201)

    def runs_page(self, request: web.Request, repo: Repo, runs: list[CheckRun]) -> web.Response:
        q = request.query
        if q.get("check_name"):
            runs = [r for r in runs if r.name == q["check_name"]]
        if q.get("status"):
            if q["status"] not in RUN_STATUSES:
                raise validation_failed(
                    errors=[{"resource": "CheckRun", "field": "status", "code": "invalid"}]
                )
            runs = [r for r in runs if r.status == q["status"]]
        if q.get("app_id"):
            runs = [r for r in runs if str(r.app.id) == q["app_id"]]
        if q.get("filter", "latest") == "latest":
            seen: set[tuple[int, str]] = set()
            latest = []
            for r in runs:
                key = (r.app.id, r.name)
                if key not in seen:
                    seen.add(key)
                    latest.append(r)
            runs = latest
        page, headers = self.api.paginate(request, runs)
        body = {
            "total_count": len(runs),
            "check_runs": [self.world.run_json(repo, r) for r in page],
        }
        return json_response(body, headers=headers)

    async def ref_runs(self, request: web.Request) -> web.Response:
        """`GET /commits/{ref}/check-runs?check_name=&app_id=&status=&filter=latest|all`."""
        repo = self.api.repo_of(request)
        sha = self.api.resolve_commit(repo, request.match_info["ref"], status=422)
        runs = sorted(
            (r for r in repo.check_runs.values() if r.head_sha == sha),
            key=lambda r: r.id,
            reverse=True,
        )
        return self.runs_page(request, repo, runs)

    async def ref_suites(self, request: web.Request) -> web.Response:
        """`GET /commits/{ref}/check-suites`."""
        repo = self.api.repo_of(request)
        sha = self.api.resolve_commit(repo, request.match_info["ref"], status=422)
        suites = [s for s in repo.check_suites.values() if s.head_sha == sha]
        if request.query.get("app_id"):
            suites = [s for s in suites if str(s.app.id) == request.query["app_id"]]
        if request.query.get("check_name"):
            name = request.query["check_name"]
            suites = [s for s in suites if any(repo.check_runs[i].name == name for i in s.run_ids)]
        page, headers = self.api.paginate(request, suites)
        body = {
            "total_count": len(suites),
            "check_suites": [self.world.suite_json(repo, s) for s in page],
        }
        return json_response(body, headers=headers)

    # ---- statuses --------------------------------------------------------------------------
    async def create_status(self, request: web.Request) -> web.Response:
        """`POST /statuses/{sha}`."""
        repo = self.api.repo_of(request)
        body = await read_json(request)
        status = self.world.set_status(
            repo,
            request.match_info["sha"],
            str(body.get("context") or "default"),
            str(body.get("state")),
            self.api.actor(request),
            description=body.get("description"),
            target_url=body.get("target_url"),
        )
        out = self.shapes.status(repo, status)
        return json_response(out, 201, headers={"Location": out["url"]})

    async def list_statuses(self, request: web.Request) -> web.Response:
        """`GET /commits/{ref}/statuses` (newest first)."""
        repo = self.api.repo_of(request)
        sha = self.api.resolve_commit(repo, request.match_info["ref"], status=422)
        statuses = [s for s in reversed(repo.statuses) if s.sha == sha]
        page, headers = self.api.paginate(request, statuses)
        return json_response([self.shapes.status(repo, s) for s in page], headers=headers)

    async def combined_status(self, request: web.Request) -> web.Response:
        """`GET /commits/{ref}/status`: the latest status per context and their combined state."""
        repo = self.api.repo_of(request)
        sha = self.api.resolve_commit(repo, request.match_info["ref"], status=422)
        latest = self.world.latest_statuses(repo, sha)
        states = [s.state for s in latest]
        if any(s in ("error", "failure") for s in states):
            state = "failure"
        elif not states or "pending" in states:
            state = "pending"
        else:
            state = "success"
        page, headers = self.api.paginate(request, latest)
        api = f"{self.shapes.urls.api}/repos/{repo.full_name}"
        body = {
            "state": state,
            "statuses": [self.shapes.status(repo, s) for s in page],
            "sha": sha,
            "total_count": len(latest),
            "repository": self.shapes.repo(repo),
            "commit_url": f"{api}/commits/{sha}",
            "url": f"{api}/commits/{sha}/status",
        }
        return json_response(body, headers=headers)

    # ---- teams, collaborators, protection --------------------------------------------------
    def org(self, request: web.Request) -> Org:
        org = self.state.orgs.get(request.match_info["org"].lower())
        if org is None:
            raise not_found()
        self.api.installation_org_check(request, org, ("members", "read"))
        return org

    def team(self, request: web.Request) -> Any:
        org = self.org(request)
        team = org.teams.get(request.match_info["slug"])
        if team is None:
            raise not_found()
        return team

    async def list_teams(self, request: web.Request) -> web.Response:
        """`GET /orgs/{org}/teams`."""
        org = self.org(request)
        page, headers = self.api.paginate(request, list(org.teams.values()))
        return json_response([self.shapes.team(t) for t in page], headers=headers)

    async def get_team(self, request: web.Request) -> web.Response:
        """`GET /orgs/{org}/teams/{slug}`."""
        team = self.team(request)
        out = self.shapes.team(team)
        out["members_count"] = len(team.members)
        out["organization"] = self.shapes.org(team.org)
        return json_response(out)

    async def team_members(self, request: web.Request) -> web.Response:
        """`GET /orgs/{org}/teams/{slug}/members` (paginated)."""
        team = self.team(request)
        role = request.query.get("role", "all")
        logins = [login for login, r in team.members.items() if role == "all" or r == role]
        users = [self.state.users[login] for login in logins]
        page, headers = self.api.paginate(request, users)
        return json_response([self.shapes.user(u) for u in page], headers=headers)

    async def team_membership(self, request: web.Request) -> web.Response:
        """`GET /orgs/{org}/teams/{slug}/memberships/{user}`: 200 active or 404."""
        team = self.team(request)
        login = request.match_info["user"].lower()
        role = team.members.get(login)
        if role is None:
            raise not_found()
        url = (
            f"{self.shapes.urls.api}/organizations/{team.org.id}/team/{team.id}/memberships/{login}"
        )
        return json_response({"url": url, "role": role, "state": "active"})

    async def collaborator_permission(self, request: web.Request) -> web.Response:
        """`GET /collaborators/{u}/permission`: maintain->write, triage->read, none."""
        repo = self.api.repo_of(request)
        user = self.state.user(request.match_info["user"])
        if user is None:
            raise not_found()
        role = self.state.role(repo, user)
        if role is None and not repo.private:
            role = "read"
        legacy = {
            "admin": "admin",
            "maintain": "write",
            "write": "write",
            "triage": "read",
            "read": "read",
        }
        permission = legacy.get(role or "", "none")
        out_user = self.shapes.user(user)
        assert out_user is not None
        order = ("read", "triage", "write", "maintain", "admin")
        idx = order.index(role) if role else -1
        out_user["permissions"] = {
            "admin": idx >= 4,
            "maintain": idx >= 3,
            "push": idx >= 2,
            "triage": idx >= 1,
            "pull": idx >= 0,
        }
        out_user["role_name"] = role or "none"
        return json_response(
            {"permission": permission, "role_name": role or "none", "user": out_user}
        )

    async def is_collaborator(self, request: web.Request) -> web.Response:
        """`GET /collaborators/{u}`: 204 or 404."""
        repo = self.api.repo_of(request)
        user = self.state.user(request.match_info["user"])
        if user is None or self.state.role(repo, user) is None:
            raise not_found()
        return web.Response(status=204)

    async def required_checks(self, request: web.Request) -> web.Response:
        """`GET /branches/{b}/protection/required_status_checks` (404 "Branch not protected")."""
        repo = self.api.repo_of(request)
        branch = request.match_info["branch"]
        doc = "https://docs.github.com/rest/branches/branch-protection#get-status-checks-protection"
        if repo.branch_sha(branch) is None:
            raise ApiError(404, "Branch not found", documentation_url=doc)
        protection = repo.protection.get(branch)
        if protection is None:
            raise ApiError(404, "Branch not protected", documentation_url=doc)
        api = f"{self.shapes.urls.api}/repos/{repo.full_name}"
        url = f"{api}/branches/{branch}/protection/required_status_checks"
        return json_response(
            {
                "url": url,
                "strict": protection.strict,
                "contexts": list(protection.contexts),
                "contexts_url": f"{url}/contexts",
                "checks": [{"context": c, "app_id": None} for c in protection.contexts],
            }
        )


def _label_names(raw: Any) -> list[str]:
    """Label names from strings or `{name: ...}` objects."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise validation_failed(
            errors=[{"resource": "Label", "field": "labels", "code": "invalid"}]
        )
    names: list[str] = []
    for item in raw:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            names.append(item["name"])
        else:
            raise validation_failed(
                errors=[{"resource": "Label", "field": "labels", "code": "invalid"}]
            )
    return names


def register(api: Api) -> None:
    """Add the collaboration routes to an Api."""
    PullRoutes(api).register()
