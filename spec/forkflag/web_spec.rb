# frozen_string_literal: true

require "erb"
require "rack"
require "rack/lint"
require "rack/mock"
require "forkflag/web"

RSpec.describe Forkflag::Web do
  include FlagPayloads

  let(:script) { "<script>alert(1)</script>" }
  let(:img) { "\"><img src=x onerror=alert(1)>" }
  let(:hostile) { "#{script} a/b" }

  let(:json) do
    payload(
      flag(hostile, strategies: [rollout(100, group_id: "h",
                                              constraints: [constraint("plan", "IN", values: [script, img])],
                                              variants: [{ name: img, weight: 1000, weightType: "variable",
                                                           stickiness: "default",
                                                           payload: { type: "string", value: script } }])]),
      flag("pro-only", strategies: [{ name: "default", constraints: [constraint("plan", "IN", values: ["pro"])] },
                                    { name: "userWithId", parameters: { userIds: "u-42" }, constraints: [] }]),
      flag("needs-pro", dependencies: [{ feature: "pro-only" }]),
      flag("off", enabled: false),
      flag("with space/and slash")
    )
  end
  let(:client) { Forkflag::Client.new(bootstrap: payload(flag("placeholder")), disable_metrics: true) }
  let(:app) { Rack::Lint.new(described_class.new(client)) }
  let(:mock) { Rack::MockRequest.new(app) }

  before { client.update(json) }
  after { client.close }

  def get(path, script_name: "")
    mock.get(path, "SCRIPT_NAME" => script_name)
  end

  # Text content of the HTML: tags removed, entities decoded.
  def text_of(html)
    CGI.unescapeHTML(html.gsub(/<[^>]*>/, " ")).gsub(/\s+/, " ")
  end

  # Every place a planted string could have gone out raw.
  def expect_escaped(body)
    [script, img, "<script", "<img", "onerror=alert(1)>"].each do |raw|
      expect(body).not_to include(raw)
    end
  end

  it "answers the process page with this process's pid and fork generation in the header" do
    res = get("/")
    expect(res.status).to eq(200)
    expect(res.content_type).to eq("text/html; charset=utf-8")
    expect(res.body).to include("pid #{Process.pid}", "generation #{client.stats[:fork_generation]}",
                                "parent #{Process.ppid}", client.stats[:connection_id])
  end

  it "counts this process's evaluations and shows them on the process and flags pages" do
    3.times { client.enabled?("pro-only", { properties: { plan: "pro" } }) }
    client.enabled?("pro-only", {})
    text = text_of(get("/").body)
    expect(text).to match(/pro-only\s+3\s+1/)
    expect(text_of(get("/flags").body)).to match(/pro-only\s+.*\s+3\s+1\s/m)
  end

  it "sends the security headers on every answer" do
    ["/", "/flags", "/flags/nope", "/explain", "/style.css", "/favicon.svg", "/missing"].each do |path|
      headers = get(path).headers
      expect(headers["content-security-policy"]).to include("default-src 'none'", "style-src 'self'",
                                                            "frame-ancestors 'none'")
      expect(headers).to include("x-content-type-options" => "nosniff", "cache-control" => "no-store",
                                 "x-frame-options" => "DENY")
    end
  end

  it "serves its stylesheet and icon" do
    res = get("/style.css")
    expect(res.status).to eq(200)
    expect(res.content_type).to eq("text/css; charset=utf-8")
    expect(res.body).to include("table")
    res = get("/favicon.svg")
    expect(res.status).to eq(200)
    expect(res.content_type).to eq("image/svg+xml")
  end

  it "links inside its mount point (SCRIPT_NAME)" do
    body = get("/flags", script_name: "/admin/forkflag").body
    expect(body).to include('href="/admin/forkflag/style.css"', 'href="/admin/forkflag/explain"',
                            'action="/admin/forkflag/flags"', 'href="/admin/forkflag/flags/pro-only"')
    expect(body.scan(/(?:href|action)="([^"]*)"/).flatten).to all(start_with("/admin/forkflag/"))
  end

  it "answers 405 with Allow for any method but GET and HEAD, and nothing for HEAD" do
    %w[POST PUT DELETE PATCH OPTIONS].each do |method|
      res = mock.request(method, "/flags")
      expect(res.status).to eq(405)
      expect(res.headers["allow"]).to eq("GET, HEAD")
    end
    head = mock.request("HEAD", "/flags")
    expect(head.status).to eq(200)
    expect(head.body).to eq("")
    expect(Integer(head.headers["content-length"])).to eq(get("/flags").body.bytesize)
  end

  it "answers 404 for an unknown page or flag, naming it (escaped)" do
    res = get("/nowhere")
    expect(res.status).to eq(404)
    expect(res.body).to include("There is no page at /nowhere.")
    res = get("/flags/#{ERB::Util.url_encode(script)}")
    expect(res.status).to eq(404)
    expect(res.body).to include("No flag named <code>&lt;script&gt;alert(1)&lt;/script&gt;</code>")
    expect_escaped(res.body)
  end

  it "shows names with a slash, a space or markup on their own page, linked with the name escaped" do
    list = get("/flags").body
    [hostile, "with space/and slash"].each do |name|
      path = "/flags/#{ERB::Util.url_encode(name)}"
      expect(list).to include("href=\"#{CGI.escapeHTML(path)}\"")
      res = get(path)
      expect(res.status).to eq(200)
      expect(text_of(res.body)).to include("Flag #{name}")
    end
  end

  it "shows a planted flag name, constraint values and variant payload as text, never as markup" do
    explain = "/explain?#{URI.encode_www_form("flag" => hostile, "properties" => "plan=#{script}")}"
    ["/", "/flags", "/explain", "/flags/#{ERB::Util.url_encode(hostile)}", explain].each do |path|
      res = get(path)
      expect(res.status).to eq(200), "#{path}: #{res.status}"
      expect_escaped(res.body)
    end
    page = get("/flags/#{ERB::Util.url_encode(hostile)}").body
    expect(page).to include("&lt;script&gt;alert(1)&lt;/script&gt;", "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;")
    expect(text_of(page)).to include(script, img)
  end

  it "escapes what the request brings: the search, a path, a form value" do
    res = get("/flags?q=#{ERB::Util.url_encode(img)}")
    expect(res.status).to eq(200)
    expect_escaped(res.body)
    expect(res.body).to include("value=\"&quot;&gt;&lt;img src=x onerror=alert(1)&gt;\"")
    expect_escaped(get("/#{ERB::Util.url_encode(img)}").body)
    expect_escaped(get("/explain?user_id=#{ERB::Util.url_encode(img)}&flag=pro-only").body)
  end

  it "filters the flags by a case-insensitive substring of the name" do
    text = text_of(get("/flags?q=PRO").body)
    expect(text).to include("2 of 5 flags have a name containing “PRO”.", "pro-only", "needs-pro")
    expect(text).not_to include("with space/and slash")
    expect(text_of(get("/flags?q=nothing-like-it").body)).to include("0 of 5", "No flag to show.")
  end

  it "shows one flag in full: strategies, constraints, variants, dependencies linked" do
    page = get("/flags/needs-pro").body
    expect(page).to include('href="/flags/pro-only"')
    text = text_of(get("/flags/pro-only").body)
    expect(text).to include("Strategy 1: default", "plan", "IN", "pro", "Strategy 2: userWithId", "u-42")
  end

  it "explains an answer from the form: reason, matched strategy, the context value each constraint read" do
    res = get("/explain?flag=pro-only&user_id=u-42&session_id=s&remote_address=10.0.0.1&properties=plan%3Dfree")
    expect(res.status).to eq(200)
    text = text_of(res.body)
    expect(text).to include("strategy_matched", "strategy 2: userWithId", "did not match", "free")
    explanation = client.explain("pro-only", { user_id: "u-42", session_id: "s", remote_address: "10.0.0.1",
                                               properties: { "plan" => "free" } })
    expect(res.body).to include(CGI.escapeHTML(explanation.to_s))
  end

  it "explains a failed dependency, a rollout's bucket and how the variant was chosen" do
    text = text_of(get("/explain?flag=needs-pro&user_id=u-1").body)
    expect(text).to include("dependency_failed")
    expect(text).to match(/pro-only\s+on\s+none\s+off\s+.*\s+no/m)

    explanation = client.explain(hostile, { user_id: "u-1", properties: { "plan" => script } }).to_h
    rollout = explanation[:strategies][0][:rollout]
    variant = explanation[:variant_trace]
    query = URI.encode_www_form("flag" => hostile, "user_id" => "u-1", "properties" => "plan=#{script}")
    res = get("/explain?#{query}")
    text = text_of(res.body)
    expect(text).to include("bucket #{rollout[:bucket]} against 100% → inside",
                            "bucket #{variant[:bucket]} of #{variant[:total_weight]}", "userId = u-1")
    expect_escaped(res.body)
  end

  it "shows a rollout without a value to hash as no match, and the steps after the match as not evaluated" do
    client.update(payload(flag("by-user", strategies: [rollout(100, stickiness: "userId"),
                                                       { name: "default",
                                                         constraints: [constraint("plan", "IN", values: ["pro"])] }])))
    text = text_of(get("/explain?flag=by-user").body)
    expect(text).to include("Strategy 1: flexibleRollout – did not match", "no value to hash → no match",
                            "Strategy 2: default – did not match")
    expect(text).not_to include("inside")
    expect(text).to match(/plan\s+IN\s+pro\s+no\s+–\s+no/)

    text = text_of(get("/explain?flag=by-user&user_id=u-1").body)
    expect(text).to include("Strategy 1: flexibleRollout – matched", "against 100% → inside",
                            "Strategy 2: default – not evaluated")
    expect(text).to match(/plan\s+IN\s+pro\s+no\s+–\s+not evaluated/)
  end

  it "explains an unknown flag as not found, and a disabled one as disabled" do
    expect(text_of(get("/explain?flag=nope").body)).to include("not_found")
    expect(text_of(get("/explain?flag=off").body)).to include("disabled")
  end

  it "reports malformed form input with a clear message, never a 500" do
    res = get("/explain?flag=pro-only&properties=#{ERB::Util.url_encode("plan=pro\nno equals here\n=x")}")
    expect(res.status).to eq(400)
    text = text_of(res.body)
    expect(text).to include('properties line 2: expected key=value, got "no equals here"',
                            'properties line 3: expected key=value, got "=x"')
    expect(text).not_to include("strategy_matched")

    lines = Array.new(101) { |i| "k#{i}=v" }.join("\n")
    expect(text_of(get("/explain?flag=f&properties=#{ERB::Util.url_encode(lines)}").body))
      .to include("properties: 101 lines; at most 100 are read")
  end

  it "answers 400 for a query it cannot read: too long, a value too long, not UTF-8, a name twice" do
    {
      "/flags?q=#{"x" * 20_000}" => "the query string is 20002 bytes long",
      "/flags?q=#{"x" * 5000}" => "the parameter \"q\" is 5000 characters long",
      "/flags?q=%FF" => "the parameter \"q\" is not valid UTF-8",
      "/flags?q=a&q=b" => "the parameter \"q\" is given more than once",
      "/flags/%FF" => "the path is not valid UTF-8"
    }.each do |path, message|
      res = get(path)
      expect(res.status).to eq(400), path[0, 40]
      expect(text_of(res.body)).to include(message)
    end
  end

  it "answers an error inside a page with a 500 naming the error class only" do
    allow(client).to receive(:flags).and_raise(RuntimeError, "secret detail")
    errors = StringIO.new
    res = mock.get("/flags", "rack.errors" => errors)
    expect(res.status).to eq(500)
    expect(res.body).to include("The page raised RuntimeError.")
    expect(res.body).not_to include("secret detail", "web.rb")
    expect(errors.string).to include("RuntimeError")
  end

  it "takes only a Forkflag::Client" do
    expect do
      described_class.new("client")
    end.to raise_error(TypeError, /Forkflag::Web.new takes a Forkflag::Client, got/)
  end
end
