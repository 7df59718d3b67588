/* When the server cannot be reached, say so: a banner at the top of the page, with a button
   that tries again (reloads this view: the address carries the map's state). It goes away by
   itself at the next answer from the server. */
(function () {
  "use strict";
  var BANNER = "atlas-offline";

  function banner() {
    var el = document.getElementById(BANNER);
    if (el) { return el; }
    el = document.createElement("div");
    el.id = BANNER;
    el.className = "atlas-offline";
    el.setAttribute("role", "alert");
    var text = document.createElement("span");
    text.className = "atlas-offline-text";
    el.appendChild(text);
    var retry = document.createElement("button");
    retry.type = "button";
    retry.textContent = "Try again";
    retry.className = "atlas-offline-retry";
    retry.addEventListener("click", function () { window.location.reload(); });
    el.appendChild(retry);
    el.hidden = true;
    document.body.insertBefore(el, document.body.firstChild);
    return el;
  }

  function show(message) {
    var el = banner();
    el.querySelector(".atlas-offline-text").textContent = message;
    el.hidden = false;
  }

  function hide() {
    var el = document.getElementById(BANNER);
    if (el) { el.hidden = true; }
  }

  var original = window.fetch.bind(window);
  window.fetch = function (input, init) {
    var url = typeof input === "string" ? input : (input && input.url) || "";
    var watched = url.indexOf("_dash-update-component") !== -1 || url.indexOf("/atlas/") !== -1;
    var request = original(input, init);
    if (!watched) { return request; }
    return request.then(function (response) {
      if (response.status === 502 || response.status === 503 || response.status === 504) {
        show("The server is not answering right now, so the map did not change. " +
             "It may be restarting or rebuilding its data.");
      } else if (response.ok || response.status === 204) {
        hide();
      }
      return response;
    }, function (error) {
      show("The server cannot be reached (no connection), so the map did not change. " +
           "Check the connection, then try again.");
      throw error;
    });
  };
})();
