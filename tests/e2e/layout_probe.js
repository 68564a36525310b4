// Injected by tests/e2e/test_report.py into a copy of the report page (the page itself has no script).
// Measures the laid-out page and writes the findings as JSON into a "pre" element with the id
// layout-probe, which the test reads from Chromium's --dump-dom.
(function () {
  const de = document.documentElement;
  const width = de.clientWidth;
  const describe = (el) => {
    const cls = typeof el.className === "string" ? el.className : el.className.baseVal || "";
    return (
      el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
      (cls.trim() ? "." + cls.trim().split(/\s+/).join(".") : "") +
      " '" + (el.textContent || "").trim().slice(0, 40) + "'"
    );
  };
  const found = {
    width: width,
    inner_width: window.innerWidth,
    scroll_width: de.scrollWidth,
    height: de.scrollHeight,
    outside: [], // boxes reaching past the left or right edge of the viewport
    clipped: [], // boxes whose content is wider than the box (cut off or spilling), unless cut with "…"
    tiles: [],
    charts: [],
  };
  for (const el of document.body.querySelectorAll("*")) {
    if (el instanceof SVGElement && el.tagName.toLowerCase() !== "svg") continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.right > width + 0.5 || r.left < -0.5) found.outside.push(describe(el));
    if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).textOverflow !== "ellipsis")
      found.clipped.push(describe(el) + " " + el.scrollWidth + ">" + el.clientWidth);
  }
  for (const tile of document.querySelectorAll(".tile")) found.tiles.push({ id: tile.id, text: tile.textContent });
  for (const svg of document.querySelectorAll("svg.chart")) {
    if (svg.getBoundingClientRect().width === 0) continue; // the variant for the other layout
    const vb = svg.viewBox.baseVal;
    const scale = svg.getScreenCTM().a;
    const texts = Array.from(svg.querySelectorAll("text")).filter((t) => t.textContent.trim());
    const of = (cls) => texts.filter((t) => t.classList.contains(cls)).map((t) => t.textContent.trim());
    const chart = {
      id: svg.id,
      kind: svg.getAttribute("class"),
      empty: svg.getAttribute("data-empty"),
      title: (svg.querySelector(":scope > title") || { textContent: "" }).textContent,
      visible_title: of("chart-title"),
      axis_titles: of("axis-title"),
      ticks: of("tick"),
      y_ticks: of("y-tick"),
      empty_text: of("empty"),
      mark_tips: Array.from(svg.querySelectorAll("rect.cell > title, rect.bar > title, circle > title")).map(
        (t) => t.textContent
      ),
      rendered_width: svg.getBoundingClientRect().width,
      min_font_px: 1e9,
      outside_viewbox: [],
      overlaps: [],
    };
    const boxes = [];
    for (const t of texts) {
      const b = t.getBBox();
      if (b.x < vb.x - 0.5 || b.y < vb.y - 0.5 || b.x + b.width > vb.x + vb.width + 0.5 || b.y + b.height > vb.y + vb.height + 0.5)
        chart.outside_viewbox.push(t.textContent.trim().slice(0, 40));
      chart.min_font_px = Math.min(chart.min_font_px, parseFloat(getComputedStyle(t).fontSize) * scale);
      boxes.push([t.textContent.trim().slice(0, 30), t.getBoundingClientRect()]);
    }
    for (let i = 0; i < boxes.length; i++)
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i][1], b = boxes[j][1];
        if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 2 && b.top < a.bottom - 2)
          chart.overlaps.push(boxes[i][0] + " / " + boxes[j][0]);
      }
    found.charts.push(chart);
  }
  const pre = document.createElement("pre");
  pre.id = "layout-probe";
  pre.textContent = JSON.stringify(found);
  document.body.appendChild(pre);
})();
