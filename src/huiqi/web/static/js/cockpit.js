// The cockpit's bar charts (ECharts, vendored): data come from the page's data attributes.
document.addEventListener("DOMContentLoaded", function () {
  var holder = document.getElementById("cockpit-data");
  if (!holder || !window.echarts) { return; }
  var data = JSON.parse(holder.dataset.chart);
  var labels = JSON.parse(holder.dataset.labels);
  function bars(id, keys, colors) {
    var el = document.getElementById(id);
    if (!el) { return; }
    var chart = window.echarts.init(el);
    chart.setOption({
      animation: false,
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 50, right: 10, bottom: 70, top: 40 },
      xAxis: { type: "category", data: data.cities, axisLabel: { rotate: 45, interval: 0 } },
      yAxis: { type: "value" },
      series: keys.map(function (k, i) {
        return { name: labels[k], type: "bar", data: data.series[k], itemStyle: { color: colors[i] } };
      })
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  bars("chart-firms", ["firms", "matched"], ["#7a0f0f", "#0b4ea2"]);
  bars("chart-grants", ["granted_yuan"], ["#1d6b2f"]);
});
