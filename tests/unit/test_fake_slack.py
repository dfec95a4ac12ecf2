"""The Slack fake speaks the wire protocol of the real slack_sdk clients and of Bolt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import FakeSlack, signed_slash_command, slash_payload


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        fake.users = {"UADMIN": {"is_admin": True}, "UPLAIN": {}}
        yield fake


def client_for(slack: FakeSlack, token: str | None = None) -> AsyncWebClient:
    return AsyncWebClient(token=token or slack.bot_token, base_url=slack.api_url,
                          retry_handlers=[])


async def test_post_reply_and_update(slack: FakeSlack) -> None:
    client = client_for(slack)
    first = await client.chat_postMessage(channel="C1", text="hello",
                                          blocks=[{"type": "divider"}])
    reply = await client.chat_postMessage(channel="C1", text="in thread", thread_ts=first["ts"])
    await client.chat_update(channel="C1", ts=first["ts"], text="edited")

    assert first["ts"] < reply["ts"]
    assert [(m.text, m.thread_ts) for m in slack.messages] == [
        ("hello", None), ("in thread", first["ts"])]
    assert slack.messages[0].blocks == [{"type": "divider"}]
    assert [(u.ts, u.text) for u in slack.updates] == [(first["ts"], "edited")]
    assert [c.method for c in slack.calls] == ["chat.postMessage"] * 2 + ["chat.update"]
    with pytest.raises(SlackApiError) as missing:
        await client.chat_update(channel="C1", ts="1.000000", text="x")
    assert missing.value.response["error"] == "message_not_found"


async def test_users_info_and_missing_channel(slack: FakeSlack) -> None:
    client = client_for(slack)
    admin = await client.users_info(user="UADMIN")
    plain = await client.users_info(user="UPLAIN")
    assert (admin["user"]["is_admin"], plain["user"]["is_admin"]) == (True, False)
    with pytest.raises(SlackApiError) as unknown:
        await client.users_info(user="UNOBODY")
    assert unknown.value.response["error"] == "user_not_found"
    slack.missing_channels.add("CGONE")
    with pytest.raises(SlackApiError) as gone:
        await client.chat_postMessage(channel="CGONE", text="x")
    assert gone.value.response["error"] == "channel_not_found"
    assert slack.messages == []


async def test_files_upload_v2_stores_exact_bytes(slack: FakeSlack) -> None:
    content = bytes(range(256)) * 3
    answer = await client_for(slack).files_upload_v2(
        channel="C1", content=content, filename="chart.png", title="Chart",
        thread_ts="1700000000.000100", initial_comment="today")
    assert len(slack.uploads) == 1
    upload = slack.uploads[0]
    assert upload.content == content
    assert (upload.filename, upload.title, upload.channel, upload.thread_ts,
            upload.initial_comment) == ("chart.png", "Chart", "C1", "1700000000.000100", "today")
    assert answer["file"]["id"] == upload.file_id
    # the SDK sends ``files`` as a JSON string in the query string
    assert isinstance(slack.method_calls("files.completeUploadExternal")[0].args["files"], str)


async def test_rate_limit_then_service_resumes(slack: FakeSlack) -> None:
    slack.retry_after = 7
    slack.fail("chat.postMessage", 429)
    client = client_for(slack)
    with pytest.raises(SlackApiError) as limited:
        await client.chat_postMessage(channel="C1", text="x")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert limited.value.response["error"] == "ratelimited"
    await client.chat_postMessage(channel="C1", text="y")
    assert [m.text for m in slack.messages] == ["y"]
    assert len(slack.method_calls("chat.postMessage")) == 2


async def test_fail_with_error_code_and_server_error(slack: FakeSlack) -> None:
    slack.fail("chat.postMessage", "channel_is_archived", 503)
    client = client_for(slack)
    with pytest.raises(SlackApiError) as archived:
        await client.chat_postMessage(channel="C1", text="x")
    assert (archived.value.response.status_code,
            archived.value.response["error"]) == (200, "channel_is_archived")
    with pytest.raises(SlackApiError) as down:
        await client.chat_postMessage(channel="C1", text="x")
    assert down.value.response.status_code == 503
    assert slack.messages == []


async def test_wrong_token_is_invalid_auth(slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as refused:
        await client_for(slack, "xoxb-wrong").chat_postMessage(channel="C1", text="x")
    assert refused.value.response["error"] == "invalid_auth"
    assert slack.messages == [] and slack.calls == []
    ok = await client_for(slack).auth_test()
    assert (ok["team_id"], ok["user_id"], ok["bot_id"]) == ("T0TEST", "UBOT", "BBOT")


async def test_block_limits(slack: FakeSlack) -> None:
    client = client_for(slack)
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    with pytest.raises(SlackApiError) as oversized:
        await client.chat_postMessage(channel="C1", text="x", blocks=[section])
    assert oversized.value.response["error"] == "invalid_blocks"
    table = {"type": "table", "rows": [[{"type": "raw_text", "text": "a"}]]}
    with pytest.raises(SlackApiError) as tables:
        await client.chat_postMessage(channel="C1", text="x",
                                      attachments=[{"blocks": [table, table]}])
    assert tables.value.response["error"] == "only_one_table_allowed"
    header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
    with pytest.raises(SlackApiError) as in_attachment:
        await client.chat_postMessage(channel="C1", text="x", attachments=[{"blocks": [header]}])
    assert in_attachment.value.response["error"] == "invalid_blocks"
    with pytest.raises(SlackApiError) as empty, pytest.warns(UserWarning, match="`text`"):
        await client.chat_postMessage(channel="C1")
    assert empty.value.response["error"] == "no_text"
    section["text"]["text"] = "x" * 3000  # type: ignore[index]
    await client.chat_postMessage(channel="C1", text="x", blocks=[section, table])
    assert len(slack.messages) == 1


async def test_signed_slash_command_verifies() -> None:
    body, headers = signed_slash_command("s3cret", "status sora-2",
                                         response_url="http://127.0.0.1:1/respond/1")
    assert SignatureVerifier("s3cret").is_valid_request(body, headers)
    assert not SignatureVerifier("other").is_valid_request(body, headers)
    assert b"text=status+sora-2" in body


async def test_response_url_records_json(slack: FakeSlack) -> None:
    url = slack.response_url()
    async with aiohttp.ClientSession() as session, session.post(url, json={"text": "hi"}) as res:
        assert (res.status, await res.text()) == (200, "ok")
    assert [(r.path, r.body) for r in slack.responses] == [(url.removeprefix(slack.url),
                                                           {"text": "hi"})]


async def test_socket_mode_client_acks_a_pushed_command(slack: FakeSlack) -> None:
    seen: list[dict[str, Any]] = []

    async def listener(client: SocketModeClient, request: SocketModeRequest) -> None:
        seen.append(request.payload)
        await client.send_socket_mode_response(
            SocketModeResponse(request.envelope_id, {"text": "got it"}))

    client = SocketModeClient(app_token=slack.app_token,
                              web_client=AsyncWebClient(base_url=slack.api_url))
    client.socket_mode_request_listeners.append(listener)  # type: ignore[arg-type]
    await client.connect()
    try:
        await asyncio.wait_for(slack.socket_connected.wait(), 5)
        payload = slash_payload("status", response_url=slack.response_url())
        ack = await slack.push_slash_command(payload)
    finally:
        await client.close()
    assert ack["payload"] == {"text": "got it"}
    assert seen == [payload]
    assert slack.method_calls("apps.connections.open")


async def test_bolt_socket_mode_handler_acks_a_command(slack: FakeSlack) -> None:
    web = client_for(slack)
    app = AsyncApp(client=web)

    @app.command("/sora")
    async def sora(ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack(f"echo {command['text']}")

    handler = AsyncSocketModeHandler(app, slack.app_token, web_client=web)
    await handler.connect_async()
    try:
        ack = await slack.push_slash_command(
            slash_payload("status", response_url=slack.response_url()))
    finally:
        await handler.close_async()
    assert ack["payload"]["text"] == "echo status"
