"""DynamoDB implementation of ChatRepository (keys and access patterns: docs/architecture.md).

Every method turns botocore failures into domain errors: a refused condition becomes NotFound /
SessionClosed / SessionExpired / BadInput (decided from the item DynamoDB returns with the refusal),
throttling and transient faults (after botocore's own retries) become ServiceUnavailable."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterator
from typing import Any, NoReturn

from chatkeep import aws
from chatkeep.errors import (
    BadInput,
    ChatkeepError,
    NotFound,
    ServiceUnavailable,
    SessionClosed,
    SessionExpired,
)
from chatkeep.models import Agent, BotConfig, Container, Message, Role, Session
from chatkeep.repository import keys
from chatkeep.repository.base import IdCollision
from chatkeep.repository.batch import MAX_ATTEMPTS, backoff_delay, batch_write
from chatkeep.repository.codec import ABSENT, attr_value, from_item, to_av, to_item
from chatkeep.settings import Settings, get_settings

GSI1 = "gsi1"
BATCH_GET_LIMIT = 100
_TRANSIENT = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "LimitExceededException",
}
STATUS_FILTERS = {
    "active": "attribute_not_exists(closed_at) AND exp > :now",
    "expired": "attribute_not_exists(closed_at) AND exp <= :now",
    "closed": "attribute_exists(closed_at)",
}


def _error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def translate_error(exc: Exception) -> Exception:
    """What a failed DynamoDB call (after botocore's retries) is in domain terms: ServiceUnavailable for a
    transient or server-side failure, else the error itself."""
    from botocore.exceptions import BotoCoreError, ClientError  # here, not per call: failures are rare

    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        # Any 5xx is the store's fault whatever its code (an HTML 500 from a proxy or emulator has none).
        if _error_code(exc) in _TRANSIENT or status >= 500:
            return ServiceUnavailable("the data store is busy: nothing was written, retry shortly")
    elif isinstance(exc, BotoCoreError):  # connection errors, timeouts
        return ServiceUnavailable("the data store is unreachable: nothing was written, retry shortly")
    return exc


def _client_error_code(exc: Exception) -> str | None:
    """The DynamoDB error code of a botocore ClientError, None for any other exception. The write methods
    catch Exception and ask this: botocore is imported here, on failure paths only (cold start)."""
    from botocore.exceptions import ClientError

    return _error_code(exc) if isinstance(exc, ClientError) else None


class _Cancellation:
    """A cancelled TransactWriteItems call: one reason per item, in request order ("None" for an item that
    passed). The caller maps `failed(i)` (item i's condition was refused) to its domain error."""

    __slots__ = ("reasons", "codes")

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        self.reasons = reasons
        self.codes = [r.get("Code") for r in reasons]

    def failed(self, index: int) -> bool:
        return index < len(self.codes) and self.codes[index] == "ConditionalCheckFailed"

    def item(self, index: int) -> dict[str, Any] | None:
        """The item as it was when its condition was refused (ReturnValuesOnConditionCheckFailure)."""
        return self.reasons[index].get("Item")

    @property
    def conflict(self) -> bool:
        """A concurrent transaction touched one of the items: nothing was written."""
        return "TransactionConflict" in self.codes

    def unmapped(self, exc: Exception) -> NoReturn:
        """What is left once the caller has mapped its own items' refusals: a conflict with a concurrent
        transaction is a 503 (nothing was written, and botocore does not retry a cancelled transaction); any
        other reason, the error itself."""
        if self.conflict:
            raise ServiceUnavailable("a concurrent write conflicted: nothing was written, retry") from exc
        raise exc


def _cancellation(exc: Exception) -> _Cancellation | None:
    """Why a TransactWriteItems call was cancelled; None when `exc` is anything else (the caller re-raises)."""
    if _client_error_code(exc) != "TransactionCanceledException":
        return None
    reasons = getattr(exc, "response", {}).get("CancellationReasons")
    return _Cancellation(reasons) if reasons else None


# ---------------------------------------------------------------- item <-> model

def session_from_item(item: dict[str, Any]) -> Session:
    """The models are read from items as DynamoDB returns them (AttributeValues), attribute by attribute,
    optional ones through `.get(name, ABSENT)` (a Python call per attribute cost 40% of a session's decode)."""
    get = item.get
    bot = attr_value(item, "bot_config")
    created_at = item["created_at"]["S"]
    agent_id = get("agent_id", ABSENT).get("N")
    count = get("message_count", ABSENT).get("N")
    purge_at = get("purge_at", ABSENT).get("N")
    return Session(
        id=int(item["sid"]["N"]),
        workspace_id=item["ws"]["S"],
        container_id=int(item["cid"]["N"]),
        owner=item["owner"]["S"],
        created_at=created_at,
        updated_at=get("updated_at", ABSENT).get("S") or created_at,
        last_activity_at=item["last_activity_at"]["S"],
        idle_timeout=int(item["idle_timeout"]["N"]),
        expires_at_epoch=float(item["exp"]["N"]),
        title=get("title", ABSENT).get("S"),
        agent_id=None if agent_id is None else int(agent_id),
        ui_layout=get("ui_layout", ABSENT).get("S") or "DEFAULT",
        metadata=attr_value(item, "metadata") or {},
        initial_context=get("initial_context", ABSENT).get("S"),
        bot_config=BotConfig(bot.get("bot_id"), bot.get("model"), bot.get("temperature")) if bot else None,
        closed_at=get("closed_at", ABSENT).get("S"),
        message_count=int(count or 0),
        last_message_at=get("last_message_at", ABSENT).get("S"),
        starter_key=get("starter_key", ABSENT).get("S"),
        purge_at=int(purge_at or 0),
    )


def item_type(item: dict[str, Any]) -> str | None:
    """What an item of the chat table is: session, container, message, ..."""
    return item.get("type", ABSENT).get("S")


def session_to_item(session: Session) -> dict[str, Any]:
    ws, sid = session.workspace_id, session.id
    bot = session.bot_config
    return to_item({
        "pk": keys.session_pk(ws, sid),
        "sk": keys.SESSION_SK,
        "gsi1pk": keys.container_pk(ws, session.container_id),
        "gsi1sk": keys.activity_sk(session.last_activity_at, sid),
        "type": "session",
        "ws": ws,
        "sid": sid,
        "cid": session.container_id,
        "owner": session.owner,
        "title": session.title,
        "agent_id": session.agent_id,
        "ui_layout": session.ui_layout,
        "metadata": session.metadata,
        "initial_context": session.initial_context,
        "bot_config": {"bot_id": bot.bot_id, "model": bot.model, "temperature": bot.temperature} if bot else None,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "last_activity_at": session.last_activity_at,
        "idle_timeout": session.idle_timeout,
        "exp": int(session.expires_at_epoch),
        "purge_at": session.purge_at,  # set by the service, from its retention setting
        "message_count": 0,
        "starter_key": session.starter_key,
    })


def container_from_item(item: dict[str, Any]) -> Container:
    agent_id = item.get("agent_id", ABSENT).get("N")
    return Container(
        id=int(item["cid"]["N"]),
        workspace_id=item["ws"]["S"],
        owner=item["owner"]["S"],
        created_at=item["created_at"]["S"],
        name=item.get("name", ABSENT).get("S"),
        agent_id=None if agent_id is None else int(agent_id),
        metadata=attr_value(item, "metadata") or {},
    )


def message_from_item(item: dict[str, Any]) -> Message:
    get = item.get
    return Message(
        id=int(item["mid"]["N"]),
        workspace_id=item["ws"]["S"],
        session_id=int(item["sid"]["N"]),
        container_id=int(item["cid"]["N"]),
        content=item["content"]["S"],
        role=Role(get("role", ABSENT).get("S") or "user"),
        created_at=item["created_at"]["S"],
        sender_sub=get("sender_sub", ABSENT).get("S"),
        sender_name=get("sender_name", ABSENT).get("S"),
        metadata=attr_value(item, "metadata") or {},
    )


def agent_from_item(item: dict[str, Any]) -> Agent:
    get = item.get
    return Agent(
        id=int(item["aid"]["N"]),
        workspace_id=item["ws"]["S"],
        slug=item["slug"]["S"],
        name=item["name"]["S"],
        created_at=item["created_at"]["S"],
        model=get("model", ABSENT).get("S"),
        temperature=attr_value(item, "temperature"),
        system_prompt=get("system_prompt", ABSENT).get("S"),
    )


def _agent_fields(agent: Agent) -> dict[str, Any]:
    return {
        "type": "agent", "ws": agent.workspace_id, "aid": agent.id, "slug": agent.slug, "name": agent.name,
        "model": agent.model, "temperature": agent.temperature, "system_prompt": agent.system_prompt,
        "created_at": agent.created_at,
    }


def encode_cursor(gsi1sk: str, sid: int) -> str:
    return base64.urlsafe_b64encode(f"{gsi1sk}|{sid}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        gsi1sk, sid = raw.rsplit("|", 1)
        if not gsi1sk.startswith("A#") or not sid.isdigit():
            raise ValueError(raw)
        return gsi1sk, int(sid)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise BadInput("cursor is not one this API returned") from exc


class DynamoDBChatRepository:
    def __init__(self, settings: Settings | None = None, client: Any = None) -> None:
        self.settings = settings or get_settings()
        self.table = self.settings.chat_table_name
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws.dynamodb()

    def _call(self, operation: str, **kwargs: Any) -> Any:
        """One DynamoDB call; what is left of a failure after botocore's retries, in domain terms."""
        try:
            return getattr(self.client, operation)(**kwargs)
        except Exception as exc:
            translated = translate_error(exc)
            if translated is exc:
                raise
            raise translated from exc

    def _already_written(self, pk: str, sk: str, expected: dict[str, Any]) -> bool:
        """After a refused `attribute_not_exists` Put of a fresh random id: is the item there ours? botocore
        retries a write whose answer was lost (timeout, dropped connection); the retry then finds the item its
        first attempt wrote. Without this check it reads as an id collision and the caller writes it twice."""
        resp = self._call("get_item", TableName=self.table, ConsistentRead=True,
                          Key={"pk": {"S": pk}, "sk": {"S": sk}})
        item = resp.get("Item")
        if not item:
            return False
        data = from_item(item)
        return all(data.get(k) == v for k, v in expected.items())

    # ------------------------------------------------------------ visibility helpers

    @staticmethod
    def _visible_condition(owner_condition: str | None, values: dict[str, Any], names: dict[str, str]) -> str:
        """The session exists, is not past retention, and (for a user) is the caller's."""
        cond = "attribute_exists(pk) AND purge_at > :now"
        if owner_condition is not None:
            cond += " AND #owner = :owner"
            values[":owner"] = to_av(owner_condition)
            names["#owner"] = "owner"
        return cond

    @staticmethod
    def _refusal(item: dict[str, Any] | None, now: float, owner_condition: str | None, what: str) -> ChatkeepError:
        """Why a conditional write on a session was refused, from the item DynamoDB returned."""
        if not item:
            return NotFound(f"{what} not found")
        data = from_item(item)
        if data.get("purge_at", 0) <= now or (owner_condition is not None and data.get("owner") != owner_condition):
            return NotFound(f"{what} not found")
        if data.get("closed_at"):
            return SessionClosed("this session is closed: start a new session")
        if data.get("exp", 0) <= now:
            return SessionExpired("this session expired after inactivity: start a new session")
        return BadInput(f"{what} cannot be changed that way")

    # ------------------------------------------------------------ containers

    def get_container(self, ws: str, cid: int) -> Container | None:
        resp = self._call("get_item", TableName=self.table, ConsistentRead=True,
                          Key={"pk": {"S": keys.container_pk(ws, cid)}, "sk": {"S": keys.CONTAINER_SK}})
        item = resp.get("Item")
        return container_from_item(item) if item else None

    def create_container(self, container: Container) -> None:
        item = self._container_item(container)
        try:
            self._call("put_item", TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except Exception as exc:
            if _client_error_code(exc) == "ConditionalCheckFailedException":
                raise IdCollision from exc
            raise

    def _container_item(self, c: Container) -> dict[str, Any]:
        pk = keys.container_pk(c.workspace_id, c.id)
        return to_item({
            "pk": pk, "sk": keys.CONTAINER_SK, "gsi1pk": pk, "gsi1sk": keys.CONTAINER_GSI_SK,
            "type": "container", "ws": c.workspace_id, "cid": c.id, "owner": c.owner, "name": c.name,
            "agent_id": c.agent_id, "metadata": c.metadata, "created_at": c.created_at,
        })

    def _session_filter(self, now: float, status: str | None, values: dict[str, Any]) -> str:
        values[":now"] = to_av(int(now))
        cond = "purge_at > :now"
        if status:
            cond += f" AND {STATUS_FILTERS[status]}"
        return cond

    def count_sessions(self, ws: str, cid: int, now: float, status: str | None = None) -> int:
        values: dict[str, Any] = {":g": to_av(keys.container_pk(ws, cid)), ":s": to_av("session")}
        flt = f"#type = :s AND {self._session_filter(now, status, values)}"
        total, start = 0, None
        while True:
            kwargs: dict[str, Any] = dict(
                TableName=self.table, IndexName=GSI1, KeyConditionExpression="gsi1pk = :g",
                FilterExpression=flt, ExpressionAttributeValues=values, ExpressionAttributeNames={"#type": "type"},
                Select="COUNT",
            )
            if start:
                kwargs["ExclusiveStartKey"] = start
            resp = self._call("query", **kwargs)
            total += resp["Count"]
            start = resp.get("LastEvaluatedKey")
            if not start:
                return total

    def list_sessions(
        self, ws: str, cid: int, now: float, *, skip: int, limit: int, status: str | None = None,
        cursor: str | None = None,
    ) -> tuple[Container | None, list[Session], bool, str | None, int | None]:
        """One Query (descending activity) that also returns the container item, which sorts first.

        Returns (container, page, has_more, next_cursor, exact_total_if_the_query_saw_everything)."""
        gpk = keys.container_pk(ws, cid)
        values: dict[str, Any] = {":g": to_av(gpk), ":c": to_av("container")}
        flt = f"#type = :c OR ({self._session_filter(now, status, values)})"
        start: dict[str, Any] | None = None
        container: Container | None = None
        if cursor:
            gsi1sk, sid = decode_cursor(cursor)
            start = {"gsi1pk": {"S": gpk}, "gsi1sk": {"S": gsi1sk},
                     "pk": {"S": keys.session_pk(ws, sid)}, "sk": {"S": keys.SESSION_SK}}
            container = self.get_container(ws, cid)
            if container is None:
                return None, [], False, None, 0
        wanted = skip + limit + 1  # one more than the page tells whether there is more
        sessions: list[Session] = []
        while True:
            kwargs: dict[str, Any] = dict(
                TableName=self.table, IndexName=GSI1, KeyConditionExpression="gsi1pk = :g",
                FilterExpression=flt, ExpressionAttributeValues=values,
                ExpressionAttributeNames={"#type": "type"}, ScanIndexForward=False,
                Limit=wanted - len(sessions) + (0 if start else 1),
            )
            if start:
                kwargs["ExclusiveStartKey"] = start
            resp = self._call("query", **kwargs)
            for item in resp.get("Items", []):
                if item_type(item) == "container":
                    container = container_from_item(item)
                else:
                    sessions.append(session_from_item(item))
            start = resp.get("LastEvaluatedKey")
            if len(sessions) >= wanted or not start:
                break
        exact_total = None if (start or cursor) else len(sessions)
        page = sessions[skip:skip + limit]
        has_more = len(sessions) > skip + limit
        next_cursor = None
        if has_more and page:
            last = page[-1]
            next_cursor = encode_cursor(keys.activity_sk(last.last_activity_at, last.id), last.id)
        return container, page, has_more, next_cursor, exact_total

    # ------------------------------------------------------------ sessions

    def create_session(self, session: Session, *, owner_condition: str | None, agent_id: int | None,
                       first_message: Message | None = None) -> None:
        """One transaction: the session, the container claim, the agent check (when given) and the first
        message with its id claim (when given: the session and its message land together or not at all)."""
        ws = session.workspace_id
        cpk = keys.container_pk(ws, session.container_id)
        names = {"#type": "type", "#owner": "owner"}
        values = {
            ":ctype": to_av("container"), ":ws": to_av(ws), ":cid": to_av(session.container_id),
            ":owner": to_av(session.owner), ":now": to_av(session.created_at), ":gpk": to_av(cpk),
            ":tilde": to_av(keys.CONTAINER_GSI_SK),
        }
        update = ("SET #type = :ctype, ws = :ws, cid = :cid, #owner = if_not_exists(#owner, :owner), "
                  "created_at = if_not_exists(created_at, :now), gsi1pk = :gpk, gsi1sk = :tilde")
        container_update: dict[str, Any] = {
            "TableName": self.table, "Key": {"pk": {"S": cpk}, "sk": {"S": keys.CONTAINER_SK}},
            "UpdateExpression": update, "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
        }
        if owner_condition is not None:
            # A user claims an unused container or writes to its own; anyone else's reads as not found.
            container_update["ConditionExpression"] = "attribute_not_exists(pk) OR #owner = :me"
            values[":me"] = to_av(owner_condition)
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": session_to_item(session),
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Update": container_update},
        ]
        if agent_id is not None:
            items.append({"ConditionCheck": {
                "TableName": self.table, "ConditionExpression": "attribute_exists(pk)",
                "Key": {"pk": {"S": keys.agent_pk(ws, agent_id)}, "sk": {"S": keys.AGENT_SK}}}})
        message_at = len(items)
        if first_message is not None:
            items.extend(self._message_puts(first_message))
        try:
            self._call("transact_write_items", TransactItems=items)
        except Exception as exc:
            cancelled = _cancellation(exc)
            if cancelled is None:
                raise
            if cancelled.failed(0):
                if self._already_written(keys.session_pk(ws, session.id), keys.SESSION_SK,
                                         {"created_at": session.created_at, "owner": session.owner,
                                          "cid": session.container_id}):
                    return  # our own earlier attempt (its answer was lost; botocore sent it again)
                raise IdCollision from exc
            if cancelled.failed(1):
                raise NotFound("container not found") from exc
            if agent_id is not None and cancelled.failed(2):
                raise NotFound(f"agent {agent_id} not found") from exc
            if first_message is not None and (cancelled.failed(message_at) or cancelled.failed(message_at + 1)):
                raise IdCollision from exc  # the message id is taken (the new session is not: index 0 held)
            cancelled.unmapped(exc)

    def get_session_view(self, ws: str, sid: int, *, message_limit: int, before_sk: str | None = None
                         ) -> tuple[Session | None, list[Message], bool]:
        """The session and its newest messages, oldest first: the newest-first page of list_messages (one
        Query that also returns the session item; two requests with a bound), in chronological order."""
        session, messages, has_more = self.list_messages(ws, sid, limit=message_limit, newest_first=True,
                                                         after_sk=None, before_sk=before_sk)
        messages.reverse()
        return session, messages, has_more

    def get_session(self, ws: str, sid: int) -> Session | None:
        """One session, GetItem (consistent): the read in front of most single-session operations."""
        resp = self._call("get_item", TableName=self.table, ConsistentRead=True,
                          Key={"pk": {"S": keys.session_pk(ws, sid)}, "sk": {"S": keys.SESSION_SK}})
        item = resp.get("Item")
        return session_from_item(item) if item else None

    def get_sessions(self, ws: str, sids: list[int]) -> list[Session]:
        """BatchGetItem (100 per request, consistent), unprocessed keys retried; input order kept."""
        found: dict[int, Session] = {}
        wanted = list(dict.fromkeys(sids))
        for i in range(0, len(wanted), BATCH_GET_LIMIT):
            chunk = wanted[i:i + BATCH_GET_LIMIT]
            request = {self.table: {"ConsistentRead": True, "Keys": [
                {"pk": {"S": keys.session_pk(ws, sid)}, "sk": {"S": keys.SESSION_SK}} for sid in chunk]}}
            for item in self._batch_get(request):
                session = session_from_item(item)
                found[session.id] = session
        return [found[sid] for sid in wanted if sid in found]

    def get_container_and_sessions(self, ws: str, cid: int, sids: list[int]
                                   ) -> tuple[Container | None, list[Session]]:
        """The container (ownership) and the sessions in one BatchGetItem when they fit (<= 99 sessions)."""
        wanted = list(dict.fromkeys(sids))
        head, rest = wanted[:BATCH_GET_LIMIT - 1], wanted[BATCH_GET_LIMIT - 1:]
        request = {self.table: {"ConsistentRead": True, "Keys": [
            {"pk": {"S": keys.container_pk(ws, cid)}, "sk": {"S": keys.CONTAINER_SK}},
            *({"pk": {"S": keys.session_pk(ws, sid)}, "sk": {"S": keys.SESSION_SK}} for sid in head)]}}
        container: Container | None = None
        found: dict[int, Session] = {}
        for item in self._batch_get(request):
            if item_type(item) == "container":
                container = container_from_item(item)
            else:
                session = session_from_item(item)
                found[session.id] = session
        if rest:
            found.update({s.id: s for s in self.get_sessions(ws, rest)})
        return container, [found[sid] for sid in wanted if sid in found]

    def _batch_get(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for attempt in range(MAX_ATTEMPTS):  # the retry policy of batch_write, for reads
            if attempt:
                time.sleep(backoff_delay(attempt - 1))
            resp = self._call("batch_get_item", RequestItems=request)
            yield from resp.get("Responses", {}).get(self.table, [])
            request = resp.get("UnprocessedKeys") or {}
            if not request:
                return
        raise ServiceUnavailable("the data store is busy: retry shortly")

    def batch_write(self, requests: list[dict[str, Any]]) -> None:
        """25 per BatchWriteItem, unprocessed items retried, then 503 (chatkeep.repository.batch)."""
        batch_write(self.table, requests, client=self.client)

    def _conditional_update(self, ws: str, sid: int, *, update: str, condition: str, values: dict[str, Any],
                            names: dict[str, str], now: float, owner_condition: str | None,
                            what: str = "session") -> Session:
        kwargs: dict[str, Any] = dict(
            TableName=self.table, Key={"pk": {"S": keys.session_pk(ws, sid)}, "sk": {"S": keys.SESSION_SK}},
            UpdateExpression=update, ConditionExpression=condition, ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD")
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            resp = self._call("update_item", **kwargs)
        except Exception as exc:
            if _client_error_code(exc) == "ConditionalCheckFailedException":
                raise self._refusal(getattr(exc, "response", {}).get("Item"), now, owner_condition, what) from exc
            raise
        return session_from_item(resp["Attributes"])

    def update_session(self, ws: str, sid: int, *, owner_condition: str | None, now: float,
                       changes: dict[str, Any], expected_container: int | None = None,
                       agent_check: int | None = None) -> Session:
        values: dict[str, Any] = {":now": to_av(int(now))}
        names: dict[str, str] = {}
        condition = self._visible_condition(owner_condition, values, names)
        if expected_container is not None:
            condition += " AND cid = :cid"
            values[":cid"] = to_av(expected_container)
        sets, removes = [], []
        for i, (field, value) in enumerate(changes.items()):
            names[f"#f{i}"] = field
            if value is None:
                removes.append(f"#f{i}")
            else:
                sets.append(f"#f{i} = :v{i}")
                values[f":v{i}"] = to_av(value)
        update = ("SET " + ", ".join(sets) if sets else "") + (" REMOVE " + ", ".join(removes) if removes else "")
        if agent_check is None:
            return self._conditional_update(ws, sid, update=update, condition=condition, values=values,
                                            names=names, now=now, owner_condition=owner_condition)
        return self._update_with_agent_check(ws, sid, update, condition, values, names, now, owner_condition,
                                             agent_check)

    def _update_with_agent_check(self, ws: str, sid: int, update: str, condition: str, values: dict[str, Any],
                                 names: dict[str, str], now: float, owner_condition: str | None,
                                 agent_id: int) -> Session:
        key = {"pk": {"S": keys.session_pk(ws, sid)}, "sk": {"S": keys.SESSION_SK}}
        try:
            self._call("transact_write_items", TransactItems=[
                {"Update": {"TableName": self.table, "Key": key, "UpdateExpression": update,
                            "ConditionExpression": condition, "ExpressionAttributeValues": values,
                            "ExpressionAttributeNames": names, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
                {"ConditionCheck": {"TableName": self.table, "ConditionExpression": "attribute_exists(pk)",
                                    "Key": {"pk": {"S": keys.agent_pk(ws, agent_id)}, "sk": {"S": keys.AGENT_SK}}}},
            ])
        except Exception as exc:
            cancelled = _cancellation(exc)
            if cancelled is None:
                raise
            if cancelled.failed(0):
                raise self._refusal(cancelled.item(0), now, owner_condition, "session") from exc
            if cancelled.failed(1):
                raise NotFound(f"agent {agent_id} not found") from exc
            cancelled.unmapped(exc)
        session = self.get_session(ws, sid)
        if session is None:
            raise NotFound("session not found")
        return session

    def close_session(self, ws: str, sid: int, *, owner_condition: str | None, now: float,
                      closed_at: str, purge_at: int) -> Session:
        values: dict[str, Any] = {":now": to_av(int(now)), ":closed": to_av(closed_at), ":purge": to_av(purge_at)}
        names: dict[str, str] = {}
        condition = self._visible_condition(owner_condition, values, names)
        try:
            # An active session: retention counts from now.
            return self._conditional_update(
                ws, sid, update="SET closed_at = :closed, updated_at = :closed, purge_at = :purge",
                condition=condition + " AND attribute_not_exists(closed_at) AND exp > :now",
                values=values, names=names, now=now, owner_condition=owner_condition)
        except SessionClosed:
            session = self.get_session(ws, sid)  # closing twice is not an error
            if session is not None:
                return session
            raise NotFound("session not found") from None
        except SessionExpired:
            # Expired already: it stopped being active at expiry, so its retention clock stands.
            del values[":purge"]
            return self._conditional_update(
                ws, sid, update="SET closed_at = :closed, updated_at = :closed",
                condition=condition + " AND attribute_not_exists(closed_at)",
                values=values, names=names, now=now, owner_condition=owner_condition)

    def delete_session(self, ws: str, sid: int, *, owner_condition: str | None, now: float) -> Session:
        values: dict[str, Any] = {":now": to_av(int(now))}
        names: dict[str, str] = {}
        kwargs: dict[str, Any] = dict(
            TableName=self.table, Key={"pk": {"S": keys.session_pk(ws, sid)}, "sk": {"S": keys.SESSION_SK}},
            ConditionExpression=self._visible_condition(owner_condition, values, names),
            ExpressionAttributeValues=values, ReturnValues="ALL_OLD")
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            resp = self._call("delete_item", **kwargs)
        except Exception as exc:
            if _client_error_code(exc) == "ConditionalCheckFailedException":
                raise NotFound("session not found") from exc
            raise
        return session_from_item(resp["Attributes"])

    def delete_sessions(self, ws: str, sids: list[int]) -> None:
        self.batch_write([{"DeleteRequest": {"Key": {"pk": {"S": keys.session_pk(ws, sid)},
                                                     "sk": {"S": keys.SESSION_SK}}}} for sid in sids])

    # ------------------------------------------------------------ messages

    def _message_puts(self, message: Message) -> list[dict[str, Any]]:
        """The transaction Puts of a new message and its id claim (uniqueness per workspace; `after`/`before`
        lookups); both refuse to overwrite."""
        ws, sid, mid = message.workspace_id, message.session_id, message.id
        msk = keys.message_sk(message.created_at, mid)
        items = (
            to_item({"pk": keys.session_pk(ws, sid), "sk": msk, "lsi1sk": keys.message_lsi_sk(mid), "type": "message",
                     "ws": ws, "sid": sid, "cid": message.container_id, "mid": mid, "content": message.content,
                     "role": message.role.value, "sender_sub": message.sender_sub,
                     "sender_name": message.sender_name, "metadata": message.metadata or None,
                     "created_at": message.created_at}),
            to_item({"pk": keys.message_claim_pk(ws, mid), "sk": keys.CLAIM_SK, "type": "message_claim",
                     "ws": ws, "sid": sid, "msk": msk}),
        )
        return [{"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}
                for item in items]

    def post_message(self, message: Message, *, owner_condition: str | None, now: float,
                     activity_at: str, retention: int) -> None:
        """One transaction: the session accepts the message (race-free lifecycle check) and the message and
        its id claim are written. A refused post writes nothing. `retention`: the service's rule, seconds a
        session is kept after it expires (purge_at moves with exp)."""
        ws, sid, mid = message.workspace_id, message.session_id, message.id
        values: dict[str, Any] = {
            ":now": to_av(int(now)), ":at": to_av(activity_at),
            ":gsk": to_av(keys.activity_sk(activity_at, sid)), ":nowr": to_av(int(now) + retention),
        }
        names: dict[str, str] = {}
        condition = (self._visible_condition(owner_condition, values, names)
                     + " AND attribute_not_exists(closed_at) AND exp > :now")
        msk = keys.message_sk(message.created_at, mid)
        update = {
            "TableName": self.table,
            "Key": {"pk": {"S": keys.session_pk(ws, sid)}, "sk": {"S": keys.SESSION_SK}},
            # Expiry moves with activity, using the session's own idle timeout (no read needed).
            "UpdateExpression": ("SET last_activity_at = :at, updated_at = :at, gsi1sk = :gsk, "
                                 "exp = idle_timeout + :now, purge_at = idle_timeout + :nowr"),
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if names:
            update["ExpressionAttributeNames"] = names
        try:
            self._call("transact_write_items", TransactItems=[{"Update": update}, *self._message_puts(message)])
        except Exception as exc:
            cancelled = _cancellation(exc)
            if cancelled is None:
                raise
            if cancelled.failed(0):
                raise self._refusal(cancelled.item(0), now, owner_condition, "session") from exc
            if cancelled.failed(1) or cancelled.failed(2):  # the message or its id claim
                if self._already_written(keys.message_claim_pk(ws, mid), keys.CLAIM_SK, {"sid": sid, "msk": msk}):
                    return  # our own earlier attempt (its answer was lost; botocore sent it again)
                raise IdCollision from exc
            cancelled.unmapped(exc)

    def message_position(self, ws: str, mid: int) -> tuple[int, str] | None:
        resp = self._call("get_item", TableName=self.table, ConsistentRead=True,
                          Key={"pk": {"S": keys.message_claim_pk(ws, mid)}, "sk": {"S": keys.CLAIM_SK}})
        item = resp.get("Item")
        if not item:
            return None
        data = from_item(item)
        return int(data["sid"]), data["msk"]

    def list_messages(self, ws: str, sid: int, *, limit: int, newest_first: bool,
                      after_sk: str | None, before_sk: str | None) -> tuple[Session | None, list[Message], bool]:
        """Newest-first without a bound: one Query that also returns the session item (it sorts last).
        Otherwise the session is read first (ownership, existence), then the bounded range."""
        pk = keys.session_pk(ws, sid)
        values: dict[str, Any] = {":pk": {"S": pk}}
        lo = after_sk if after_sk else keys.MESSAGE_SK_PREFIX
        hi = before_sk if before_sk else keys.SESSION_SK
        values[":lo"], values[":hi"] = {"S": lo}, {"S": hi}
        one_query = newest_first and not after_sk and not before_sk
        session: Session | None = None
        if not one_query:
            session = self.get_session(ws, sid)
            if session is None:
                return None, [], False
        resp = self._call(
            "query", TableName=self.table, ConsistentRead=True, ScanIndexForward=not newest_first,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi", ExpressionAttributeValues=values,
            # BETWEEN includes the bounds themselves: read one more per bound, or a full page after a
            # bound would look like the last one (has_more false while messages remain).
            Limit=limit + (2 if one_query else 1) + (1 if after_sk else 0) + (1 if before_sk else 0))
        items = resp.get("Items", [])
        if one_query:
            if not items or item_type(items[0]) != "session":
                return None, [], False
            session = session_from_item(items[0])
        # BETWEEN is inclusive: drop the bounds themselves.
        messages = [message_from_item(i) for i in items
                    if item_type(i) == "message" and i["sk"]["S"] not in (after_sk, before_sk)]
        has_more = len(messages) > limit
        return session, messages[:limit], has_more

    # ------------------------------------------------------------ agents

    def create_agent(self, agent: Agent, *, make_default: bool) -> None:
        ws = agent.workspace_id
        fields = _agent_fields(agent)
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "ConditionExpression": "attribute_not_exists(pk)",
                     "Item": to_item({"pk": keys.agent_pk(ws, agent.id), "sk": keys.AGENT_SK,
                                      "gsi1pk": keys.agents_gsi_pk(ws), "gsi1sk": agent.slug, **fields})}},
            # The slug item carries a copy of the agent: resolving a slug is one GetItem. Agents are immutable.
            {"Put": {"TableName": self.table, "ConditionExpression": "attribute_not_exists(pk)",
                     "Item": to_item({"pk": keys.agent_slug_pk(ws, agent.slug), "sk": keys.SLUG_SK, **fields})}},
        ]
        if make_default:
            items.append({"Put": {"TableName": self.table, "Item": to_item(
                {"pk": keys.default_agent_pk(ws), "sk": keys.SLUG_SK, **fields})}})
        try:
            self._call("transact_write_items", TransactItems=items)
        except Exception as exc:
            cancelled = _cancellation(exc)
            if cancelled is None:
                raise
            if cancelled.failed(0):
                raise IdCollision from exc
            if cancelled.failed(1):
                from chatkeep.errors import Conflict

                raise Conflict(f"an agent with slug {agent.slug!r} already exists") from exc
            cancelled.unmapped(exc)

    def get_agent(self, ws: str, aid: int) -> Agent | None:
        resp = self._call("get_item", TableName=self.table,
                          Key={"pk": {"S": keys.agent_pk(ws, aid)}, "sk": {"S": keys.AGENT_SK}})
        item = resp.get("Item")
        return agent_from_item(item) if item else None

    def get_agent_by_slug(self, ws: str, slug: str | None) -> Agent | None:
        pk = keys.agent_slug_pk(ws, slug) if slug else keys.default_agent_pk(ws)
        resp = self._call("get_item", TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": keys.SLUG_SK}})
        item = resp.get("Item")
        return agent_from_item(item) if item else None

    def list_agents(self, ws: str, *, limit: int, after_slug: str | None) -> tuple[list[Agent], bool]:
        values: dict[str, Any] = {":g": {"S": keys.agents_gsi_pk(ws)}}
        kce = "gsi1pk = :g"
        if after_slug:
            kce += " AND gsi1sk > :after"
            values[":after"] = {"S": after_slug}
        resp = self._call("query", TableName=self.table, IndexName=GSI1, KeyConditionExpression=kce,
                          ExpressionAttributeValues=values, Limit=limit + 1)
        agents = [agent_from_item(i) for i in resp.get("Items", [])]
        return agents[:limit], len(agents) > limit

    # ------------------------------------------------------------ starter sessions

    def get_starter(self, ws: str, sub: str, slug: str | None) -> tuple[int | None, Session | None]:
        """(session id the pointer names, the session if it is still there)."""
        resp = self._call("get_item", TableName=self.table, ConsistentRead=True,
                          Key={"pk": {"S": keys.user_pk(ws, sub)}, "sk": {"S": keys.starter_sk(slug)}})
        item = resp.get("Item")
        if not item:
            return None, None
        sid = int(from_item(item)["sid"])
        return sid, self.get_session(ws, sid)

    def get_home_container(self, ws: str, sub: str) -> int | None:
        resp = self._call("get_item", TableName=self.table, ConsistentRead=True,
                          Key={"pk": {"S": keys.user_pk(ws, sub)}, "sk": {"S": keys.HOME_SK}})
        item = resp.get("Item")
        return int(from_item(item)["cid"]) if item else None

    def claim_home_container(self, ws: str, sub: str, container: Container) -> int:
        """Create the user's home container and point to it; a concurrent claim wins: use its container."""
        try:
            self._call("transact_write_items", TransactItems=[
                {"Put": {"TableName": self.table, "ConditionExpression": "attribute_not_exists(pk)",
                         "Item": to_item({"pk": keys.user_pk(ws, sub), "sk": keys.HOME_SK, "type": "home",
                                          "ws": ws, "cid": container.id})}},
                {"Put": {"TableName": self.table, "ConditionExpression": "attribute_not_exists(pk)",
                         "Item": self._container_item(container)}},
            ])
        except Exception as exc:
            cancelled = _cancellation(exc)
            if cancelled is None:
                raise
            if cancelled.failed(0):
                existing = self.get_home_container(ws, sub)
                if existing is not None:
                    return existing
            if cancelled.failed(1):
                raise IdCollision from exc
            cancelled.unmapped(exc)
        return container.id

    def create_starter(self, session: Session, *, sub: str, slug: str | None, replace_sid: int | None) -> bool:
        """Write the pointer and the session together. False when another call's pointer won the race."""
        ws = session.workspace_id
        pointer: dict[str, Any] = {
            "TableName": self.table,
            "Item": to_item({"pk": keys.user_pk(ws, sub), "sk": keys.starter_sk(slug), "type": "starter",
                             "ws": ws, "sid": session.id}),
        }
        if replace_sid is None:
            pointer["ConditionExpression"] = "attribute_not_exists(pk)"
        else:  # the session it named is gone: replace it, unless someone else already did
            pointer["ConditionExpression"] = "sid = :old"
            pointer["ExpressionAttributeValues"] = {":old": to_av(replace_sid)}
        try:
            self._call("transact_write_items", TransactItems=[
                {"Put": pointer},
                {"Put": {"TableName": self.table, "Item": session_to_item(session),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
            ])
        except Exception as exc:
            cancelled = _cancellation(exc)
            if cancelled is None:
                raise
            if cancelled.failed(0):
                return False
            if cancelled.failed(1):
                raise IdCollision from exc
            if cancelled.conflict:
                return False
            cancelled.unmapped(exc)
        return True
