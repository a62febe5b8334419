// The funds dashboard's charts (vendored ECharts), drawn from the page's JSON data block; a
// click on a bar jumps to its row in the table below and marks it (no inline script).
document.addEventListener("DOMContentLoaded", function () {
  var holder = document.getElementById("chart-data");
  if (!holder || !window.echarts) { return; }
  var data = JSON.parse(holder.textContent);
  function linkRows(chart, rows) {
    chart.on("click", function (p) {
      var row = document.getElementById(rows[p.dataIndex]);
      if (!row) { return; }
      document.querySelectorAll("tr.selected").forEach(function (r) { r.classList.remove("selected"); });
      row.classList.add("selected");
      row.scrollIntoView({behavior: "smooth", block: "center"});
    });
  }
  function draw(id, names, series, rows, stacked) {
    var el = document.getElementById(id);
    if (!el || !names.length) { return; }
    el.style.height = "300px";
    var chart = window.echarts.init(el);
    chart.setOption({
      animation: false,
      tooltip: {trigger: "axis"},
      legend: {top: 0},
      grid: {left: 50, right: 10, bottom: 60, top: 40},
      xAxis: {type: "category", data: names, axisLabel: {interval: 0, rotate: names.length > 4 ? 30 : 0}},
      yAxis: {type: "value"},
      series: series.map(function (s) {
        return {name: s.name, type: "bar", stack: stacked ? "all" : undefined, data: s.data};
      })
    });
    linkRows(chart, rows);
    window.addEventListener("resize", function () { chart.resize(); });
  }
  draw("chart-calls", data.calls.names, data.calls.series, data.calls.rows, true);
  draw("chart-stages", data.stages.names, [{name: "天 / days", data: data.stages.data}], data.stages.rows, false);
  draw("chart-regions", data.regions.names, [{name: "% ", data: data.regions.data}], data.regions.rows, false);
  draw("chart-budget", data.budget.names,
    [{name: "已使用 / used", data: data.budget.used}, {name: "剩余 / left", data: data.budget.left}],
    data.budget.rows, true);
  draw("chart-sizes", data.sizes.names, [{name: "万元", data: data.sizes.data}], data.sizes.rows, false);
  draw("chart-industries", data.industries.names, [{name: "万元", data: data.industries.data}],
    data.industries.rows, false);
});
