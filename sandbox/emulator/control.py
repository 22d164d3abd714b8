"""The control API: ``/_control/...`` HTTP routes that play the users' side (send, press a
button, read a chat) and set up faults, for the web chat page and for tests in other processes."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sandbox.emulator.methods import BotApiMethods
from sandbox.emulator.protocol import JSON, dumps

__all__ = ["ControlApi", "control_errors"]


class ControlApi(BotApiMethods):
    """The ``_c_*`` route handlers over the Python API of the store and the faults."""

    def _add_control_routes(self, app: web.Application) -> None:
        app.router.add_post("/_control/users", self._c_users)
        app.router.add_get("/_control/users", self._c_list_users)
        app.router.add_post("/_control/send", self._c_send)
        app.router.add_post("/_control/press", self._c_press)
        app.router.add_post("/_control/raw", self._c_raw)
        app.router.add_get("/_control/transcript/{chat_id}", self._c_transcript)
        app.router.add_get("/_control/wait/{chat_id}", self._c_wait)
        app.router.add_get("/_control/callback/{callback_id}", self._c_callback)
        app.router.add_post("/_control/faults", self._c_faults)
        app.router.add_get("/_control/faults", self._c_list_faults)
        app.router.add_delete("/_control/faults", self._c_clear_faults)
        app.router.add_get("/_control/flood", self._c_flood)
        app.router.add_post("/_control/flood", self._c_flood)
        app.router.add_get("/_control/stats", self._c_stats)
        app.router.add_delete("/_control/stats", self._c_stats)
        app.router.add_post("/_control/block", self._c_block)
        app.router.add_get("/_control/calls/{method}", self._c_calls)
        app.router.add_get("/_control/file/{file_id}", self._c_file)

    @staticmethod
    def _ok(result: Any, status: int = 200, **extra: Any) -> web.Response:
        return web.json_response(
            {"ok": True, "result": result, **extra}, status=status, dumps=dumps
        )

    @staticmethod
    def _fail(status: int, description: str) -> web.Response:
        return web.json_response(
            {"ok": False, "error_code": status, "description": description},
            status=status,
            dumps=dumps,
        )

    @staticmethod
    async def _json_body(request: web.Request) -> JSON:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text='{"ok":false,"description":"JSON object expected"}')
        return body

    async def _c_users(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        user = self.add_user(
            int(body["user_id"]),
            first_name=str(body.get("first_name") or "同学"),
            username=body.get("username"),
            language_code=str(body.get("language_code") or "zh-hans"),
        )
        return self._ok(user)

    async def _c_list_users(self, request: web.Request) -> web.Response:
        return self._ok(self.users)

    async def _c_send(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        user_id = int(body["user_id"])
        kind = body.get("kind", "text")
        if kind == "sticker":
            return self._ok(self.send_sticker(user_id, body.get("emoji") or "👍"))
        if kind == "photo":
            data = base64.b64decode(body["data"]) if body.get("data") else None
            return self._ok(self.send_photo_from_user(user_id, body.get("caption"), data))
        if kind == "document":
            data = base64.b64decode(body.get("data") or "")
            name = str(body.get("filename") or "file.txt")
            return self._ok(self.send_document_from_user(user_id, data, name, body.get("caption")))
        text = str(body.get("text") or "")
        if not text:
            return self._fail(400, "text is empty")
        return self._ok(self.send_text(user_id, text))

    async def _c_press(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        try:
            update = self.press_button(
                int(body["user_id"]),
                int(body["message_id"]),
                str(body["callback_data"]),
                check=bool(body.get("check", True)),
            )
        except ValueError as exc:
            return self._fail(400, str(exc))
        return self._ok(update)

    async def _c_raw(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if "redeliver" in body:
            return self._ok(self.redeliver(int(body["redeliver"])))
        return self._ok(self.inject_raw_update(body))

    async def _c_transcript(self, request: web.Request) -> web.Response:
        """``?version=N&timeout=S`` long-polls until the chat's version differs from N."""
        chat_id = int(request.match_info["chat_id"])
        known = request.query.get("version")
        if known is not None:
            timeout = min(float(request.query.get("timeout", "25")), 60.0)

            def changed() -> bool | None:
                chat = self._chats.get(chat_id)
                return True if (chat.version if chat else 0) != int(known) else None

            await self._wait_until(changed, timeout)
        chat = self._chats.get(chat_id)
        return self._ok(
            self.transcript(chat_id),
            version=chat.version if chat else 0,
            reply_keyboard=self.reply_keyboard(chat_id),
        )

    async def _c_wait(self, request: web.Request) -> web.Response:
        chat_id = int(request.match_info["chat_id"])
        after = request.query.get("after")
        contains = request.query.get("contains")
        try:
            message = await self.wait_for_bot_message(
                chat_id,
                timeout=min(float(request.query.get("timeout", "5")), 60.0),
                after_message_id=int(after) if after else None,
                contains=contains,
            )
        except TimeoutError as exc:
            return self._fail(408, str(exc))
        return self._ok(message)

    async def _c_callback(self, request: web.Request) -> web.Response:
        callback_id = request.match_info["callback_id"]
        try:
            answer = await self.wait_for_callback_answer(
                callback_id, timeout=min(float(request.query.get("timeout", "0")), 60.0)
            )
        except TimeoutError as exc:
            return self._fail(408, str(exc))
        return self._ok(answer)

    async def _c_faults(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        try:
            fault = self.faults.add(
                method=str(body.get("method", "*")),
                kind=str(body.get("kind", "429")),
                retry_after=int(body.get("retry_after", 1)),
                times=None if body.get("times", 1) is None else int(body.get("times", 1)),
                chat_id=None if body.get("chat_id") is None else int(body["chat_id"]),
                delay=float(body.get("delay", 1.0)),
                description=body.get("description"),
                status=int(body.get("status", 502)),
                every=int(body.get("every", 1)),
            )
        except ValueError as exc:
            return self._fail(400, str(exc))
        return self._ok(fault.to_json())

    async def _c_list_faults(self, request: web.Request) -> web.Response:
        return self._ok([fault.to_json() for fault in self.faults.active])

    async def _c_clear_faults(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return self._ok(True)

    async def _c_flood(self, request: web.Request) -> web.Response:
        """POST ``{"enabled": true, "global_rate": 30, "chat_rate": 1, "chat_burst": 3}``
        turns the flood limits on (``false`` off); ``"reset": true`` zeroes their counters."""
        if request.method == "POST":
            body = await self._json_body(request)
            if body.get("reset"):
                self.flood.reset_counters()
            if body.get("enabled") is False:
                self.flood.disable()
            elif body.get("enabled"):
                burst = body.get("global_burst")
                try:
                    self.flood.enable(
                        global_rate=float(body.get("global_rate", 30.0)),
                        global_burst=None if burst is None else float(burst),
                        chat_rate=float(body.get("chat_rate", 1.0)),
                        chat_burst=float(body.get("chat_burst", 3.0)),
                    )
                except ValueError as exc:
                    return self._fail(400, str(exc))
        return self._ok(self.flood.stats())

    async def _c_stats(self, request: web.Request) -> web.Response:
        """What the bot sent (per chat, duplicates) and what the flood limits refused;
        DELETE zeroes both."""
        if request.method == "DELETE":
            self.reset_sent_counts()
            self.flood.reset_counters()
        duplicates = [
            {"chat_id": chat_id, "text": text, "count": count}
            for (chat_id, text), count in sorted(self.duplicates().items())
        ]
        return self._ok(
            {
                "sent_total": self.sent_total,
                "sent_by_chat": {str(c): n for c, n in sorted(self.sent_counts().items())},
                "duplicates": duplicates,
                "flood": self.flood.stats(),
            }
        )

    async def _c_block(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if body.get("blocked", True):
            self.block(int(body["user_id"]))
        else:
            self.unblock(int(body["user_id"]))
        return self._ok(True)

    async def _c_calls(self, request: web.Request) -> web.Response:
        return self._ok(self.calls(request.match_info["method"]))

    async def _c_file(self, request: web.Request) -> web.StreamResponse:
        stored = self.files.get(request.match_info["file_id"])
        if stored is None or not stored.data:
            return self._fail(404, "Not Found")
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )


@web.middleware
async def control_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Bad control-API input (missing/invalid fields) becomes a 400 JSON reply, not a 500."""
    try:
        return await handler(request)
    except (KeyError, ValueError, TypeError) as exc:
        if not request.path.startswith("/_control/"):
            raise
        return web.json_response(
            {"ok": False, "error_code": 400, "description": f"bad request: {exc!r}"}, status=400
        )
