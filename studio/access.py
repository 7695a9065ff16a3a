"""Who may do what: logins, their roles, and what each role may call.

    logins = Logins.gather(admins=["ann:pw"], annotators=["bob:pw2"], admin_file=None, annotator_file=None)
    logins.check("bob", "pw2")      # True (slowed down and locked out after repeated failures)
    logins.role_of("bob")           # "annotator"

Two roles: an admin does everything; an annotator only reads pairs and votes. Without any login (the
studio on one's own machine) everybody is admin. The web app asks `allowed(role, roles_of_handler)` on
the server before every event it runs, whatever the browser shows.

Logins come from --auth / --annotator (USER:PASS, which other users of the machine can see in the
process list), from a file of USER:PASS lines, or from $STUDIO_AUTH / $STUDIO_ANNOTATORS (USER:PASS
items separated by spaces or new lines).
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.errors import StudioError
from studio.paths import read_text
from studio.workspace import RUN_ID

ADMIN = "admin"
ANNOTATOR = "annotator"
ROLES = (ADMIN, ANNOTATOR)
ENV_ADMINS = "STUDIO_AUTH"
ENV_ANNOTATORS = "STUDIO_ANNOTATORS"
FREE_TRIES = 5
"""Failed logins for one name before it is locked out for a while."""
LOCKOUT_SECONDS = 60.0
"""First lockout; each further failure doubles it, up to MAX_LOCKOUT_SECONDS."""
MAX_LOCKOUT_SECONDS = 900.0
NAME_FAILURES_PER_HOUR = 100
"""Failed logins for one name from all addresses together in the last hour beyond which the name is refused
from everywhere until the hour's count falls again: many addresses give no more guesses than this."""
FAILURE_DELAY = 0.5
"""Seconds every failed login waits before it is answered."""
LOGIN_SOURCE: contextvars.ContextVar[str] = contextvars.ContextVar("login_source", default="")
"""The address a login attempt comes from (set by the web app's request gate); failures count per name and
address, so failures from one address do not lock the name out everywhere."""


def parse_login(item: str, where: str = "--auth") -> tuple[str, str]:
    user, sep, password = item.strip().partition(":")
    if not sep or not user.strip() or not password:
        raise StudioError(f"{where} needs USER:PASS with both parts (got {_masked(item)!r}).")
    return user.strip(), password


def _masked(item: str) -> str:
    user, sep, _ = item.partition(":")
    return f"{user}:***" if sep else item


def read_login_file(path: str | os.PathLike) -> list[tuple[str, str]]:
    """USER:PASS per line; blank lines and lines starting with # are skipped."""
    path = Path(path).expanduser()
    text = read_text(path, "The login file", StudioError)
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        out.append(parse_login(line, where=f"{path} line {n}"))
    return out


def _from_env(name: str) -> list[tuple[str, str]]:
    return [parse_login(item, where=f"${name}") for item in os.environ.get(name, "").split()]


@dataclass
class Logins:
    roles: dict[str, str] = field(default_factory=dict)
    """user -> role"""
    _passwords: dict[str, str] = field(default_factory=dict, repr=False)
    _failures: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict, repr=False)
    _recent: dict[str, list[float]] = field(default_factory=dict, repr=False)
    """name -> times of its counted failures in the last hour, from any address"""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def gather(cls, admins: list[str] | None = None, annotators: list[str] | None = None,
               admin_file: str | None = None, annotator_file: str | None = None, use_env: bool = True) -> Logins:
        """Every login from the command line, the files and the environment."""
        logins = cls()
        pairs = [(parse_login(a), ADMIN) for a in admins or []]
        pairs += [(parse_login(a, "--annotator"), ANNOTATOR) for a in annotators or []]
        pairs += [(p, ADMIN) for p in (read_login_file(admin_file) if admin_file else [])]
        pairs += [(p, ANNOTATOR) for p in (read_login_file(annotator_file) if annotator_file else [])]
        if use_env:
            pairs += [(p, ADMIN) for p in _from_env(ENV_ADMINS)] + [(p, ANNOTATOR) for p in _from_env(ENV_ANNOTATORS)]
        for (user, password), role in pairs:
            known = logins.roles.get(user)
            if known is not None and known != role:
                raise StudioError(f"The login {user!r} is given both as {known} and as {role}; give it once.")
            logins.roles[user], logins._passwords[user] = role, password
        if logins.roles and ADMIN not in logins.roles.values():
            raise StudioError("Annotator logins need at least one admin login too (--auth USER:PASS), or nobody "
                              "could train.")
        return logins

    @property
    def enabled(self) -> bool:
        return bool(self.roles)

    def role_of(self, user: str | None) -> str | None:
        """The role of a logged-in user; admin for everybody when the studio has no logins; None for a
        name it does not know."""
        if not self.enabled:
            return ADMIN
        return self.roles.get(user or "")

    def check(self, user: str, password: str, now: float | None = None, source: str | None = None,
              delay: bool = True) -> bool:
        """Whether the login is right. Repeated failures for one name from one address (`source`, by default
        the web request's) lock that name out from there for a while (a right password is refused then too,
        and a try while locked out does not make it longer); past NAME_FAILURES_PER_HOUR failures from all
        addresses together, the name is refused from everywhere; every failure is answered slowly."""
        now = time.monotonic() if now is None else now
        key = (user, LOGIN_SOURCE.get() if source is None else source)
        with self._lock:
            count, last = self._failures.get(key, (0, 0.0))
            recent = [t for t in self._recent.get(user, []) if now - t < 3600.0]
            locked = (count >= FREE_TRIES and now - last < self.lockout(count)) or len(recent) >= NAME_FAILURES_PER_HOUR
            if locked:
                ok = False
            else:
                expected = self._passwords.get(user)
                ok = expected is not None and hmac.compare_digest(expected.encode(), str(password).encode())
            if ok:
                self._failures.pop(key, None)
            elif not locked:
                if len(self._failures) > 10_000:  # many made-up names: forget the oldest half
                    for name in sorted(self._failures, key=lambda n: self._failures[n][1])[:5_000]:
                        del self._failures[name]
                    self._recent = {n: ts for n, ts in self._recent.items() if any(u == n for u, _ in self._failures)}
                self._failures[key] = (count + 1, now)
                if user in self._passwords:  # made-up names need no count of their own
                    self._recent[user] = [*recent, now]
        if not ok and FAILURE_DELAY and delay:
            time.sleep(FAILURE_DELAY)
        return ok

    async def acheck(self, user: str, password: str) -> bool:
        """`check` for the web app's login route: a failure waits without holding up the server's other
        requests (Gradio calls this on its event loop)."""
        ok = self.check(user, password, delay=False)
        if not ok and FAILURE_DELAY:
            await asyncio.sleep(FAILURE_DELAY)
        return ok

    @staticmethod
    def lockout(count: int) -> float:
        return min(LOCKOUT_SECONDS * 2 ** max(count - FREE_TRIES, 0), MAX_LOCKOUT_SECONDS)


def allowed(role: str | None, handler_roles: frozenset[str] | set[str] | tuple[str, ...]) -> bool:
    """Whether a caller with `role` may run a handler open to `handler_roles` (admins may run all)."""
    if role == ADMIN:
        return True
    return role is not None and role in handler_roles


# What the web app may read. The command line is the machine owner's and reads any path; a browser may
# only name a hub id, a saved dataset, a shipped file, its own upload, or something inside the workspace.

OUTSIDE_DATA = ("{what} {source!r} is not something the studio may read for you here: name a hub dataset "
                "(org/name), a saved dataset, or a shipped demo file; for a file of your own, upload it in the Data "
                "tab and save it as a dataset.")
OUTSIDE_MODEL = ("Model {source!r} is not one the studio may load for you here: name 'tiny', a hub id (org/name), "
                 "a run of this workspace, or a folder under its exports/.")


REWARD_CODE_OFF = ("A reward written as code runs as Python on this server, so a studio with logins runs it only "
                   "when launched with --allow-reward-code; choose another reward, or train from the command line.")


REMOTE_CODE_OFF = ("model.trust_remote_code runs Python from the model's repository on this server, so a studio with "
                   "logins allows it only when launched with --allow-reward-code; train from the command line "
                   "instead.")


def looks_like_path(text: str) -> bool:
    """Whether a name is meant as a path on this machine rather than a hub id (org/name) or a dataset name."""
    text = str(text).strip()
    return text.startswith(("/", ".", "~")) or "\\" in text or text.count("/") > 1


def _local(source: str) -> Path | None:
    """The local file or folder `source` names, if any (links and '..' resolved)."""
    from studio.data.readers import names_a_file
    from studio.paths import resolve_project_path

    text = str(source).strip()
    if not text:
        return None
    path = resolve_project_path(text)
    if path.exists() or looks_like_path(text) or names_a_file(text):
        return path.resolve()
    return None


def _inside(path: Path, *roots: Path) -> bool:
    for root in roots:
        try:
            path.relative_to(root.resolve())
            return True
        except ValueError:
            continue
    return False


def readable_data(ws: Any, source: str | None, what: str = "The data") -> str | None:
    """`source` if the web app may read it as data; StudioError otherwise."""
    from studio.paths import DEMO_DATA

    if source is None or not str(source).strip():
        return source
    path = _local(str(source))
    if path is None:
        from studio.data.hub import refuse_loader_name
        from studio.data.load import saved_dataset

        if saved_dataset(str(source), ws) is None:  # 'json', 'text' ... would read files from the server's folder
            refuse_loader_name(str(source))
        return source  # a saved dataset's name or a hub id
    if not _inside(path, ws.datasets, ws.root / "uploads", DEMO_DATA):
        raise StudioError(OUTSIDE_DATA.format(what=what, source=str(source)))
    return source


ENV_PROBLEMS: list[str] = []
"""Settings from the environment that could not be read (app.launch refuses to start with them)."""


def env_megabytes(name: str, default: float) -> int:
    """Bytes from a setting in megabytes ($NAME); a value that is not a positive number is noted in ENV_PROBLEMS,
    and the default stands in until app.launch refuses to start with it (an import never fails on it)."""
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else float(default)
        if not 0 < value < 2**40:
            raise ValueError
    except ValueError:
        ENV_PROBLEMS.append(f"{name}={raw[:40]!r} is not a positive number of megabytes (the default is {default})")
        value = float(default)
    return int(value * 2**20)


WEB_READ_BYTES = env_megabytes("STUDIO_WEB_READ_MB", 128)
"""The most a data file may unpack to where the web app reads it in its own process (Data tab, Preferences,
evaluation): rows in memory take several times their bytes, and one server serves everyone."""
WEB_HUB_ROWS = 50_000
"""The most rows the Data tab's hub box streams from the start of a hub dataset's split (and no more than
WEB_READ_BYTES of their text): a split can be terabytes, and runs read it whole in their own process. (The Chat
tab's evaluation and the Preferences prompts read the hub split they are given whole.)"""


def read_here(ws: Any, source: str | None, what: str = "The data") -> str | None:
    """readable_data, for data the web app reads itself: a file or folder (a saved dataset's version too) holding
    over WEB_READ_BYTES unpacked is refused before it is read (a few kilobytes of gzip can unpack to gigabytes)."""
    source = readable_data(ws, source, what)
    if not source:
        return source
    from studio.data.load import saved_dataset
    from studio.data.readers import data_bytes
    from studio.data.store import dataset_path

    saved = saved_dataset(str(source), ws)  # its latest version's folder: the train and eval files
    path = dataset_path(ws, saved[0]).parent if saved is not None else _local(str(source))
    if path is not None and path.exists() and data_bytes(path, WEB_READ_BYTES) > WEB_READ_BYTES:
        raise StudioError(f"{what} {path.name} holds over the {WEB_READ_BYTES / 2**20:.0f} MiB of data the web page "
                          "reads at once (unpacked); inspect, convert or train on it from the command line (studio "
                          "data inspect, studio train), or upload a part of it.")
    return source


def readable_model(ws: Any, name: str | None) -> str | None:
    """What the web app may load as a model (or read the config and tokenizer of), as it should be loaded: `name`
    itself, or the id of the run (and checkpoint) a run's name stands for, so that a cache or a result never keeps
    a name that may later mean another run; StudioError otherwise. Run ids of the workspace count as models."""
    from studio.models import registry
    from studio.paths import ASSETS

    text = str(name or "").strip()
    if not text or text == registry.TINY or registry.find_preset(text) is not None:
        return name
    if RUN_ID.match(text) and (ws.runs / text).is_dir():
        return name
    if "@" in text:  # one checkpoint of a run of this workspace: RUN@checkpoint-N, nothing else
        run, _, checkpoint = text.partition("@")
        if re.fullmatch(r"checkpoint-\d+", checkpoint):
            if RUN_ID.match(run) and (ws.runs / run).is_dir():
                return name
            named = ws.named_run(run)
            if named is not None:
                return f"{named.name}@{checkpoint}"
        raise StudioError(f"{text!r} is not a checkpoint of a run in this workspace (RUN@checkpoint-N).")
    path = _local(text)
    if path is None:
        named = ws.named_run(text)
        return named.name if named is not None else name  # a run's name, else a hub id
    if not _inside(path, ws.runs, ws.exports, ASSETS):
        raise StudioError(OUTSIDE_MODEL.format(source=text))
    return name


def run_id_only(ws: Any, run: str | None) -> Path:
    """A run of this workspace named by its id or its name (never a path), as the web app accepts runs."""
    text = str(run or "").strip()
    if not RUN_ID.match(text) or not (ws.runs / text / "config.yaml").exists() or \
            not (ws.runs / text).resolve().is_relative_to(ws.runs.resolve()):  # not a link to elsewhere
        named = ws.named_run(text)  # only runs list_runs finds: under runs/, with a config
        if named is None:
            raise StudioError(f"No run {text!r} in this workspace.")
        return named
    return ws.runs / text


def refuse_code(cfg: Any, allowed: bool) -> None:
    """Refuse, unless `allowed`, a run config that would run Python on this server at a user's word: a reward
    written as code, or a model repository's own code (model.trust_remote_code)."""
    if allowed:
        return
    if "rl" in cfg.sections() and "code" in cfg.rl.rewards:
        raise StudioError(REWARD_CODE_OFF)
    if cfg.model.trust_remote_code:
        raise StudioError(REMOTE_CODE_OFF)


def readable_config(ws: Any, cfg: Any, reward_code: bool = True) -> Any:
    """Every file or model a run config names, checked as the web app must before it starts a run.
    `reward_code`: whether this studio runs Python its users name: reward functions written in the run config,
    and a model repository's own code (model.trust_remote_code)."""
    readable_data(ws, cfg.data.train, "The training data")
    readable_data(ws, cfg.data.eval, "The eval data")
    readable_model(ws, cfg.model.name)
    if cfg.model.parent_run:
        run_id_only(ws, cfg.model.parent_run)
    if "rl" in cfg.sections() and "model" in cfg.rl.rewards and cfg.rl.reward_model not in (None, "latest"):
        scorer = run_id_only(ws, cfg.rl.reward_model)
        if not reward_code:
            from studio.config import load_config

            refuse_code(load_config(scorer / "config.yaml"), reward_code)  # it is loaded as its own config says
    from studio.methods.rewards import names_a_file

    refuse_code(cfg, reward_code)
    if "rl" in cfg.sections() and names_a_file(cfg.rl.reward_code):
        raise StudioError("A reward code file can be named from the command line only; in the studio, write "
                          "the function in the reward code box.")
    if cfg.train.accelerate_config:
        raise StudioError("An accelerate config file can be given from the command line only "
                          "(`studio train ... --set train.accelerate_config=FILE`).")
    return cfg


UPLOAD_QUOTA_BYTES = env_megabytes("STUDIO_UPLOAD_QUOTA_MB", 2048)
"""Bytes one login may upload per day ($STUDIO_UPLOAD_QUOTA_MB, default 2048)."""
UPLOAD_WINDOW_SECONDS = 86_400.0


@dataclass
class UploadAllowance:
    """How much each login may still upload: `quota` bytes in any `window` seconds."""

    quota: int = UPLOAD_QUOTA_BYTES
    window: float = UPLOAD_WINDOW_SECONDS
    _taken: dict[str, list[tuple[float, int]]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, user: str, nbytes: int, now: float | None = None) -> bool:
        """Count an upload of `nbytes` against `user`; False (and nothing counted) when it would pass the quota."""
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [(t, n) for t, n in self._taken.get(user, []) if now - t < self.window]
            if sum(n for _, n in recent) + nbytes > self.quota:
                self._taken[user] = recent
                return False
            self._taken[user] = recent + [(now, nbytes)]
            return True

    def refusal(self) -> str:
        return (f"Upload refused: each login may upload {self.quota / 2**20:,.0f} MB a day, and this one would "
                "pass that. Saved datasets are kept; uploads older than a day are cleaned up.")
