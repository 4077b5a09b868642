"""The page's script and style sheet, served from the gateway itself (no CDN, and a content
security policy that allows only same-origin scripts and styles).

The script refreshes the page from the JSON feed every ``data-refresh-ms`` milliseconds. When
the gateway requires a token, the operator opens ``.../status/#token=TOKEN``: the fragment
never leaves the browser, the script moves the token into ``sessionStorage``, removes it from
the address bar, and sends it as ``Authorization: Bearer`` with each feed request. Text from
the feed is set with ``textContent``; only the server-drawn chart SVG is inserted as markup.
"""

from __future__ import annotations

from typing import Final

__all__ = ["APP_JS", "STYLE_CSS"]

APP_JS: Final = r"""(function () {
  "use strict";
  var body = document.body;
  var token = null;
  var match = /^#token=([^&]+)/.exec(window.location.hash);
  if (match) {
    token = decodeURIComponent(match[1]);
    try { window.sessionStorage.setItem("gatewayStatusToken", token); } catch (e) {}
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  } else {
    try { token = window.sessionStorage.getItem("gatewayStatusToken"); } catch (e) {}
  }
  var interval = parseInt(body.getAttribute("data-refresh-ms"), 10) || 5000;

  function setText(id, value) {
    var element = document.getElementById(id);
    if (element) { element.textContent = String(value); }
  }

  function cell(row, value) {
    var td = document.createElement("td");
    td.textContent = String(value);
    row.appendChild(td);
  }

  function render(doc) {
    setText("session-count", doc.sessions.count);
    setText("queued", doc.queued);
    var states = Object.keys(doc.upstreams).sort().map(function (k) {
      return k + ": " + doc.upstreams[k];
    });
    setText("upstreams", states.length ? states.join(", ") : "none");
    Object.keys(doc.charts).forEach(function (name) {
      var slot = document.getElementById("chart-slot-" + name);
      if (slot) { slot.innerHTML = doc.charts[name]; }
    });
    var tbody = document.getElementById("sessions");
    var rows = doc.sessions.rows.map(function (s) {
      var tr = document.createElement("tr");
      [s.kid, s.account, s.state, s.transport, s.queue_depth, s.idle_seconds].forEach(
        function (v) { cell(tr, v); });
      return tr;
    });
    tbody.replaceChildren.apply(tbody, rows);
    var list = document.getElementById("errors");
    var items = doc.errors.map(function (e) {
      var li = document.createElement("li");
      li.textContent = e.time + " " + e.level + " " + e.logger + " " + e.message;
      return li;
    });
    list.replaceChildren.apply(list, items);
    document.getElementById("status-note").replaceChildren(
      document.createTextNode("updated "), Object.assign(document.createElement("span"),
      {id: "updated", textContent: doc.generated_at}));
    body.setAttribute("data-updates", String(
      (parseInt(body.getAttribute("data-updates"), 10) || 0) + 1));
  }

  function refresh() {
    var headers = {"Accept": "application/json"};
    if (token) { headers["Authorization"] = "Bearer " + token; }
    window.fetch(body.getAttribute("data-feed"), {headers: headers, cache: "no-store"})
      .then(function (response) {
        if (response.status === 401) {
          throw new Error("this page needs the status token: open it as .../status/#token=TOKEN");
        }
        if (!response.ok) { throw new Error("the gateway answered " + response.status); }
        return response.json();
      })
      .then(render)
      .catch(function (error) { setText("status-note", String(error.message || error)); })
      .then(function () { window.setTimeout(refresh, interval); });
  }

  refresh();
})();
"""

STYLE_CSS: Final = """body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin: 0; }
h2 { font-size: 1.1em; }
#status-note { color: #666; margin-top: 0.2em; }
.figures { display: flex; gap: 2em; flex-wrap: wrap; }
.figure { font-size: 2em; font-weight: 600; }
#charts { display: flex; flex-wrap: wrap; gap: 0.8em; }
.chart-slot { margin: 0; }
table { border-collapse: collapse; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2em 0.8em; text-align: left; }
td:nth-child(1), td:nth-child(2) { font-family: ui-monospace, monospace; }
#errors { font-family: ui-monospace, monospace; font-size: 0.9em; }
"""
