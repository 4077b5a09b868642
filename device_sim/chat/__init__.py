"""``impp-devices chat``: one emulated device as an interactive terminal client.

:mod:`device_sim.chat.model` is the sans-IO screen and command model, :mod:`device_sim.chat.client`
the device client with subscription answers, :mod:`device_sim.chat.terminal` the trio and terminal
adapter over :class:`~device_sim.client.runner.DeviceRunner`, :mod:`device_sim.chat.cli` the
subcommand.
"""
