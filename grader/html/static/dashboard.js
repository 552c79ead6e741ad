// Sort the dashboard's table by a column: click its header (again to reverse). Numbers
// sort highest first, text A to Z.
(function () {
  "use strict";
  var table = document.getElementById("submissions");
  var body = table.tBodies[0];
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
    if (!th.classList.contains("sortable")) { return; }
    th.addEventListener("click", function () {
      var numeric = th.dataset.type === "number";
      var asc = th.dataset.order ? th.dataset.order !== "asc" : !numeric;
      th.dataset.order = asc ? "asc" : "desc";
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.sort, y = b.cells[column].dataset.sort;
        var c = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
})();
