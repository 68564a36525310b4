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
  // The two balanced columns: per column (by left edge), its sections in order and where it ends.
  found.columns = [];
  const columns = document.querySelector(".columns");
  if (columns) {
    const byLeft = new Map();
    for (const section of columns.querySelectorAll(":scope > section")) {
      const r = section.getBoundingClientRect();
      if (r.height === 0) continue;
      const left = Math.round(r.left);
      if (!byLeft.has(left)) byLeft.set(left, { left: left, right: Math.round(r.right), sections: [] });
      byLeft.get(left).sections.push({ id: section.id, top: r.top + window.scrollY, height: r.height });
    }
    for (const column of Array.from(byLeft.values()).sort((a, b) => a.left - b.left)) {
      const last = column.sections[column.sections.length - 1];
      column.bottom = last.top + last.height;
      found.columns.push(column);
    }
    const box = columns.getBoundingClientRect();
    found.columns_box = { left: box.left, right: box.right };
  }
  // Lines broken inside a word (between two letters or digits, not at a camelCase boundary) in table
  // cells, chips and legends: a host name must break after a dot, a sentence between words.
  found.mid_word_breaks = [];
  const word = /[\p{L}\p{N}]/u;
  for (const el of document.querySelectorAll("td, th, .chip, .legend span, .badge")) {
    if (el.getBoundingClientRect().width === 0) continue;
    const chars = [];
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode())
      for (let i = 0; i < node.data.length; i++) chars.push([node, i]);
    let previous = null;
    for (const [node, i] of chars) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const rect = range.getClientRects()[0];
      if (!rect) continue;
      const ch = node.data[i];
      // a new element (the server under a job's name) starts its own line: only a break inside one
      // element's text counts
      const sameRun = previous && previous.parent === node.parentElement;
      if (sameRun && rect.top > previous.top + 2 && word.test(ch) && word.test(previous.ch)) {
        const camel = /[a-z]/.test(previous.ch) && /[A-Z]/.test(ch);
        if (!camel) {
          const text = chars.map(([n, k]) => n.data[k]).join("");
          found.mid_word_breaks.push(describe(el) + " at '" + previous.ch + "|" + ch + "' of '" + text.slice(0, 80) + "'");
        }
      }
      previous = { top: rect.top, ch: ch, parent: node.parentElement };
    }
  }
  // Chips that read alike within one list: two machines (or one on two servers) must be told apart.
  found.duplicate_chips = [];
  for (const list of document.querySelectorAll(".chips")) {
    const seen = new Set();
    for (const chip of list.querySelectorAll(".chip")) {
      const text = chip.textContent.trim();
      if (seen.has(text)) found.duplicate_chips.push((list.id || "chips") + ": " + text);
      seen.add(text);
    }
  }
  const pre = document.createElement("pre");
  pre.id = "layout-probe";
  pre.textContent = JSON.stringify(found);
  document.body.appendChild(pre);
})();
