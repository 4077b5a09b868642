"""The trio and terminal adapter of ``impp-devices chat``: stdin lines in, screen lines out.

Three tasks share one :class:`~device_sim.chat.model.ChatScreen`: the device's
:class:`~device_sim.chat.client.ChatRunner` (the client over UDP, through a radio link model if one
is given), a pump that shows each client event, and the input loop that parses each typed line and
applies its actions to the runner. Input is plain lines: a worker thread reads stdin (a terminal
in canonical mode edits the line itself), so nothing here changes the terminal's modes. On a
terminal, each batch of new lines first erases the prompt line (``CR``, ``ESC [ K``), prints the
lines, then the prompt again; elsewhere lines are printed as they come, without a prompt.

An action the client's state does not allow (``/wake`` while awake, ``/sleep`` while connecting)
is refused on the screen before it reaches the client, which would otherwise fail for good
(:class:`~device_sim.client.core.ClientError`). ``/quit`` or end of input closes the session and
waits, at most :data:`CLOSE_TIMEOUT` seconds, for the runner to carry the Close.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

import trio

from device_sim.chat.client import ChatClient, ChatRunner
from device_sim.chat.model import (
    Action,
    AnswerSubscription,
    ChatScreen,
    Quit,
    SendText,
    SetOwnPresence,
    Sleep,
    Subscribe,
    Wake,
)
from device_sim.client.core import TRANSITIONS, ClientError, ClientInput, ClientState
from device_sim.client.runner import DatagramSockets, UdpSockets, gateway_address
from device_sim.radio.duplex import DuplexLink
from gateway import wire
from gateway.enroll.provisioning import Provisioning

__all__ = ["CLOSE_TIMEOUT", "Display", "apply_action", "run_chat"]

CLOSE_TIMEOUT = 10.0  # seconds to let the Close leave (through a slow link) before giving up
_ERASE_LINE = "\r\x1b[K"


class Display:
    """Writes new screen lines and, on a terminal, keeps the prompt as the last line."""

    def __init__(self, out: TextIO, *, terminal: bool) -> None:
        self.out = out
        self.terminal = terminal

    def show(self, screen: ChatScreen) -> None:
        """Print the lines written since the last call, then the prompt (terminal only)."""
        lines = screen.take_lines()
        if self.terminal:
            self.out.write(_ERASE_LINE + "".join(f"{line}\n" for line in lines) + screen.prompt)
        else:
            self.out.write("".join(f"{line}\n" for line in lines))
        self.out.flush()


def _allowed(state: ClientState, what: ClientInput) -> bool:
    return (state, what) in TRANSITIONS


def apply_action(runner: ChatRunner, screen: ChatScreen, action: Action, now: float) -> bool:
    """Do one action on the device; True when it was :class:`Quit`."""
    state = runner.state
    try:
        if isinstance(action, SendText):
            screen.sent(runner.send_text(action.to, action.text), action.to)
        elif isinstance(action, SetOwnPresence):
            runner.send_operation(
                wire.SetPresence(open=action.available, show=action.show, note=action.note)
            )
        elif isinstance(action, AnswerSubscription):
            verb = (
                wire.SubscriptionAction.APPROVE if action.approve else wire.SubscriptionAction.DENY
            )
            runner.send_operation(wire.SubscriptionCommand(verb, action.contact))
        elif isinstance(action, Subscribe):
            runner.send_operation(
                wire.SubscriptionCommand(wire.SubscriptionAction.SUBSCRIBE, action.contact)
            )
        elif isinstance(action, Sleep):
            if not _allowed(state, ClientInput.SLEEP):
                screen.refused(now, f"cannot sleep while {state.value}")
            else:
                runner.sleep(action.seconds)
        elif isinstance(action, Wake):
            if not _allowed(state, ClientInput.WAKE):
                screen.refused(now, f"nothing to wake from: the device is {state.value}")
            else:
                runner.wake()
        elif isinstance(action, Quit):
            if _allowed(state, ClientInput.CLOSE):
                runner.close()
            return True
    except (ClientError, wire.WireError) as error:
        screen.refused(now, str(error))
    return False


async def _read_lines(read_line: Callable[[], str], lines: trio.MemorySendChannel[str]) -> None:
    """Feed typed lines to ``lines`` until end of input (then the channel closes)."""
    async with lines:
        while True:
            line = await trio.to_thread.run_sync(read_line, abandon_on_cancel=True)
            if not line:
                return
            await lines.send(line)


async def run_chat(
    provisioning: Provisioning,
    out: TextIO,
    *,
    private_key: bytes | None = None,
    link: DuplexLink | None = None,
    sockets: DatagramSockets | None = None,
    read_line: Callable[[], str] = sys.stdin.readline,
    terminal: bool | None = None,
) -> int:
    """Run the chat until /quit, end of input, or the session ends; 0 unless it failed."""
    start = trio.current_time()

    def now() -> float:
        return trio.current_time() - start

    address = gateway_address(provisioning)
    runner = ChatRunner(
        ChatClient(),
        provisioning,
        sockets if sockets is not None else UdpSockets(address),
        link=link,
        private_key=private_key,
    )
    screen = ChatScreen(own_name=provisioning.account.split("@", 1)[0])
    display = Display(out, terminal=out.isatty() if terminal is None else terminal)
    via = f" over the {link.preset.name} link model" if link is not None else ""
    screen.write(now(), f"{provisioning.account}: connecting to {address[0]}:{address[1]}{via}")
    screen.write(now(), "/help lists the commands")
    display.show(screen)
    runner_done = trio.Event()

    async def run_runner(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await runner.run(task_status=task_status)
        finally:
            runner_done.set()

    async def show_events(cancel: trio.CancelScope) -> None:
        async for event in runner.events():
            for action in screen.on_event(event, now()):
                apply_action(runner, screen, action, now())
            display.show(screen)
        cancel.cancel()  # the runner stopped: nothing more will happen

    send_lines, receive_lines = trio.open_memory_channel[str](16)
    async with trio.open_nursery() as nursery:
        await nursery.start(run_runner)
        nursery.start_soon(show_events, nursery.cancel_scope)
        nursery.start_soon(_read_lines, read_line, send_lines)
        async with receive_lines:
            async for line in receive_lines:
                quitting = False
                for action in screen.typed(line, now()):
                    quitting = apply_action(runner, screen, action, now()) or quitting
                display.show(screen)
                if quitting:
                    break
            else:
                apply_action(runner, screen, Quit(), now())
        with trio.move_on_after(CLOSE_TIMEOUT):
            await runner_done.wait()
        nursery.cancel_scope.cancel()
    screen.take_lines()
    if display.terminal:
        out.write("\n")
        out.flush()
    return 1 if runner.state is ClientState.FAILED else 0
