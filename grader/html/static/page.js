// The review controls of a feedback page. They appear only when `grader review` serves
// the page (its /api/session answers); a page opened from disk is read-only.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("grader-data").textContent);
  function post(body) {
    return fetch("/api/override", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Grader-Review": "1" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (j) { if (!r.ok) { throw new Error(j.error || r.statusText); } return j; });
    });
  }
  function setup(session) {
    document.body.classList.add("reviewing");
    var who = document.getElementById("reviewer-name");
    who.value = window.localStorage.getItem("grader-reviewer") || session.by || "";
    who.addEventListener("change", function () { window.localStorage.setItem("grader-reviewer", who.value); });
    Array.prototype.forEach.call(document.querySelectorAll(".review[data-item]"), function (box) {
      var button = box.querySelector("button");
      var status = box.querySelector(".status");
      button.addEventListener("click", function () {
        status.textContent = "saving…"; status.className = "status";
        post({
          submission: data.submission, item: box.dataset.item,
          points: parseFloat(box.querySelector("input[type=number]").value),
          comment: box.querySelector("input[type=text]").value, by: who.value
        }).then(function (answer) {
          status.textContent = answer.message; status.className = "status saved";
        }).catch(function (err) {
          status.textContent = "not saved: " + err.message; status.className = "status failed";
        });
      });
    });
  }
  if (window.location.protocol === "http:" || window.location.protocol === "https:") {
    fetch("/api/session", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (session) { if (session) { setup(session); } })
      .catch(function () {});
  }
})();
