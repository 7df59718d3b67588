/* "Link to this view" copies the link instead of reloading the page (Ctrl/middle click still
   opens it). The result is announced in a polite live region beside the link. */
(function () {
  "use strict";

  function announce(link, text) {
    var note = document.getElementById("share-status");
    if (!note) {
      note = document.createElement("span");
      note.id = "share-status";
      note.className = "atlas-share-status";
      note.setAttribute("role", "status");
      note.setAttribute("aria-live", "polite");
      link.insertAdjacentElement("afterend", note);
    }
    note.textContent = text;
    window.clearTimeout(note._timer);
    note._timer = window.setTimeout(function () { note.textContent = ""; }, 4000);
  }

  function fallbackCopy(text) {
    var box = document.createElement("textarea");
    box.value = text;
    box.setAttribute("readonly", "");
    box.style.position = "fixed";
    box.style.opacity = "0";
    document.body.appendChild(box);
    box.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(box);
    return ok;
  }

  document.addEventListener("click", function (event) {
    var link = event.target && event.target.closest ? event.target.closest("#share-link") : null;
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey ||
        event.altKey) {
      return;
    }
    event.preventDefault();
    var url = new URL(link.getAttribute("href") || "/", window.location.href).href;
    link.setAttribute("data-copied", url);
    var done = function () { announce(link, "Link copied: paste it to share this map."); };
    var failed = function () {
      if (fallbackCopy(url)) { done(); } else { announce(link, "Copy this link: " + url); }
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(url).then(done, failed);
    } else {
      failed();
    }
  });
})();
