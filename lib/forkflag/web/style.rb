# frozen_string_literal: true

module Forkflag
  class Web
    # The stylesheet, served by the app itself (the Content-Security-Policy
    # allows styles from the page's own origin only).
    module Style
      # Where it is served, inside the mount point.
      PATH = "/style.css"

      # Where the page's icon is served, inside the mount point (a browser
      # that finds none asks the host application for /favicon.ico).
      ICON_PATH = "/favicon.svg"

      # The icon: a flag.
      ICON = <<~SVG
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1d2330"/><path d="M4 2v12M4 3h8l-2 3 2 3H4" stroke="#cfe0ff" stroke-width="1.5" fill="none"/></svg>
      SVG

      # The stylesheet.
      CSS = <<~CSS
        :root { --fg: #1d2330; --muted: #5b6475; --line: #d8dde6; --bg: #f6f7f9; --on: #176b3a; --off: #9a2c2c;
                --accent: #1f4fa3; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
               background: var(--bg); }
        header.top { background: #1d2330; color: #fff; padding: .6rem 1.2rem; display: flex; flex-wrap: wrap;
                     gap: .4rem 1.4rem; align-items: baseline; }
        header.top .brand { font-weight: 700; font-size: 1.05rem; }
        header.top nav a { color: #cfe0ff; margin-right: 1rem; text-decoration: none; }
        header.top nav a.current { color: #fff; text-decoration: underline; }
        header.top .process { margin-left: auto; font: 13px ui-monospace, monospace; color: #e8ecf4; }
        main { padding: 1rem 1.2rem 2rem; max-width: 1200px; }
        h1 { font-size: 1.35rem; margin: .2rem 0 .8rem; overflow-wrap: anywhere; }
        h2 { font-size: 1.1rem; margin: 1.4rem 0 .5rem; }
        h3 { font-size: 1rem; margin: 1rem 0 .4rem; }
        table { border-collapse: collapse; background: #fff; margin: .3rem 0 .8rem; }
        th, td { border: 1px solid var(--line); padding: .3rem .55rem; text-align: left; vertical-align: top;
                 overflow-wrap: anywhere; }
        th { background: #eef1f5; font-weight: 600; white-space: nowrap; }
        table.facts th { width: 14rem; }
        code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; }
        pre { background: #fff; border: 1px solid var(--line); padding: .6rem; white-space: pre-wrap;
              overflow-wrap: anywhere; }
        a { color: var(--accent); }
        .on { color: var(--on); font-weight: 600; }
        .off { color: var(--off); font-weight: 600; }
        .muted { color: var(--muted); }
        .badge { display: inline-block; padding: 0 .45rem; border-radius: .6rem; font-size: 12px; font-weight: 600;
                 border: 1px solid currentColor; }
        .message { border-left: 4px solid var(--off); background: #fff; padding: .5rem .8rem; margin: .6rem 0; }
        .note { border-left: 4px solid var(--accent); background: #fff; padding: .5rem .8rem; margin: .6rem 0; }
        form.search { margin: .4rem 0 .8rem; }
        form.search input[type=search] { width: 22rem; max-width: 100%; }
        form.explain { display: grid; grid-template-columns: 12rem minmax(0, 28rem); gap: .45rem .8rem;
                       background: #fff; border: 1px solid var(--line); padding: .8rem; max-width: 44rem; }
        form.explain label { font-weight: 600; padding-top: .25rem; }
        form.explain .actions { grid-column: 2; }
        input[type=text], input[type=search], textarea { width: 100%; padding: .3rem .4rem; font: inherit;
                                                        border: 1px solid #aab3c2; border-radius: 3px; }
        textarea { min-height: 5rem; font-family: ui-monospace, monospace; font-size: 13px; }
        button { padding: .35rem .9rem; font: inherit; border: 1px solid var(--accent); background: var(--accent);
                 color: #fff; border-radius: 3px; }
        ul.lines { margin: 0; padding-left: 1.1rem; }
        section.strategy { background: #fff; border: 1px solid var(--line); padding: .4rem .8rem .2rem;
                           margin: .6rem 0; }
        section.strategy.matched { border-left: 4px solid var(--on); }
      CSS
    end
  end
end
