// The push dashboard's charts, drawn from the JSON data block of the page (no inline script);
// they follow the window's width, as the cockpit's and the funds dashboard's do.
document.addEventListener("DOMContentLoaded", function () {
  if (!window.echarts) { return; }
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var funnel = echarts.init(document.getElementById("funnel-chart"));
  funnel.setOption({
    tooltip: {trigger: "item"},
    series: [{type: "funnel", sort: "none", left: "10%", width: "80%",
      data: data.stages.map(function (s, i) { return {name: s, value: data.funnel[i] || 0}; })}]
  });
  var bars = echarts.init(document.getElementById("channel-chart"));
  bars.setOption({
    tooltip: {trigger: "axis"}, legend: {},
    xAxis: {type: "category", data: data.stages}, yAxis: {type: "value"},
    series: data.channels.map(function (c) { return {name: c.name, type: "bar", data: c.values}; })
  });
  window.addEventListener("resize", function () { funnel.resize(); bars.resize(); });
});
