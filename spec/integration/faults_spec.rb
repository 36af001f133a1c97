# frozen_string_literal: true

require "logger"
require "securerandom"
require "stringio"

# The thread-backed client against the faults a real Unleash server cannot be
# made to produce, served by a real socket server (spec/support/fault_server.rb).
#
# Every example serves a good configuration first (V1: alpha on, beta off),
# then a fault until the client has counted failures in a row - evaluation
# must keep answering from V1 meanwhile - then a NEW good configuration (V2:
# alpha off, beta on) that the client must pick up. Recorded request times
# show the backoff: after a poll that leaves `f` counted failures, the next
# poll comes refresh_interval * (1 + f) later (f capped at 10; a success
# takes one off). `stats[:failures]` counts failures since the last success;
# `stats[:refresh_delay]` is the backoff's current wait.
RSpec.describe "Forkflag::Client against a faulty server", :integration do
  include FlagPayloads

  let(:features) { "/api/client/features" }
  let(:v1) { payload(flag("alpha"), flag("beta", enabled: false)) }
  let(:v2) { payload(flag("alpha", enabled: false), flag("beta")) }
  let(:fault) { FaultServer.new }
  let(:token) { "*:development.#{SecureRandom.hex(24)}" }
  let(:app_name) { "forkflag-faults-#{SecureRandom.hex(4)}" }
  let(:log) { StringIO.new }
  let(:logger) { Logger.new(log, level: Logger::DEBUG) }
  let(:clients) { [] }
  let(:refresh_interval) { 0.15 }
  # Slack for the server thread's own scheduling when timestamps are compared.
  let(:slack) { 0.08 }

  def client(**options)
    c = Forkflag::Client.new(url: fault.url, token: token, app_name: app_name, refresh_interval: refresh_interval,
                             timeout: 2, logger: logger, backup_path: false, disable_metrics: true, **options)
    clients << c
    c
  end

  def wait_for(timeout, message, &)
    UnleashServer.wait_for(timeout: timeout, interval: 0.02, message: message, &)
  end

  def elapsed
    start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    yield
    Process.clock_gettime(Process::CLOCK_MONOTONIC) - start
  end

  # A good answer carrying a configuration.
  def good(payload, etag = nil)
    FaultServer.json(payload, etag: etag)
  end

  # Marks an answer as one the client must count as a failure (the label is
  # the spec's own; the server ignores it).
  def bad(answer)
    answer.merge(bad: true)
  end

  # Evaluations made, by flag (every evaluation is counted for metrics).
  let(:made) { Hash.new { |h, k| h[k] = { yes: 0, no: 0 } } }

  def enabled?(client, name)
    client.enabled?(name).tap { |on| made[name][on ? :yes : :no] += 1 }
  end

  def v1?(client)
    [enabled?(client, "alpha"), enabled?(client, "beta")] == [true, false]
  end

  def v2?(client)
    [enabled?(client, "alpha"), enabled?(client, "beta")] == [false, true]
  end

  # Serves V1 once, then `fault_answer` for every refresh until released.
  def script_fault(fault_answer)
    fault.queue("GET", features, good(v1, '"v1"'))
    fault.answer("GET", features, bad(fault_answer))
  end

  # Waits until the client counted `failures` failures in a row, checks it
  # still answers from V1, then serves V2 and waits until the client has it.
  def fail_then_recover(client, failures: 3, timeout: 15)
    expect(client.wait_until_ready(5)).to be(true)
    expect(v1?(client)).to be(true)
    wait_for(timeout, "#{failures} failed refreshes in a row") { client.stats[:failures] >= failures }
    expect(v1?(client)).to be(true)
    expect(client).to be_ready
    fault.answer("GET", features, good(v2, '"v2"'))
    wait_for(5 + (refresh_interval * 11), "the new flags") { v2?(client) }
  end

  # [failures after a poll, gap to the next poll, least gap the backoff
  # allows] for each pair of consecutive feature requests. A hung or slow
  # answer adds the client's timeout (or the delay, if shorter) to the gap.
  def backoff_gaps(interval:, timeout:)
    failures = 0
    fault.requests("GET", features).each_cons(2).map do |a, b|
      failures = a.answer[:bad] ? [failures + 1, 10].min : [failures - 1, 0].max
      wait = a.answer[:hang] || a.answer[:drip] ? timeout : [a.answer[:delay] || 0, timeout].min
      [failures, b.at - a.at, wait + (interval * (1 + failures))]
    end
  end

  def expect_backoff(interval: refresh_interval, timeout: 2)
    gaps = backoff_gaps(interval: interval, timeout: timeout)
    short = gaps.select { |_, gap, least| gap < least - slack }
    expect(short).to be_empty, "polls came sooner than the backoff allows: #{gaps.inspect}"
    gaps
  end

  def log_lines(pattern)
    log.string.lines.grep(pattern)
  end

  # One message when refreshes start failing, one when they recover: none
  # per retry.
  def expect_one_failure_message(reason)
    wait_for(5, "the recovery logged") { log.string.include?("refresh recovered") }
    failed = log_lines(/forkflag: refresh failed/)
    expect(failed.size).to eq(1), "expected one failure message, got:\n#{log.string}"
    expect(failed.first).to match(reason)
    expect(failed.first).to include("evaluating with the last good configuration")
    expect(log_lines(/forkflag: refresh recovered/).size).to eq(1)
  end

  after do
    clients.each { |c| c.close(timeout: 3) }
    Forkflag::Logging.drain
    expect(fault.stop(deadline: 5)).to be_empty
    expect(fault.errors).to be_empty
    expect(log.string).not_to include(token)
    clients.each { |c| expect([c.inspect, c.config.inspect, c.stats.inspect].join).not_to include(token) }
  end

  it "keeps serving through 500s, backs off as interval * (1 + failures) and decays failures on success" do
    script_fault(status: 500, body: "internal error")
    c = client
    fail_then_recover(c, failures: 3)
    # The first success ends the run of failures, and takes one interval
    # off the wait; the next ones take the rest.
    wait_for(5, "the run of failures ended") { c.stats[:failures].zero? }
    expect(c.stats[:refresh_delay]).to be > refresh_interval
    wait_for(5 + (refresh_interval * 11), "the wait back to the interval") do
      (c.stats[:refresh_delay] - refresh_interval).abs < 1e-6
    end
    wait_for(5, "one more poll") { fault.requests("GET", features).last.answer[:bad].nil? }

    gaps = expect_backoff
    after_three = gaps.find { |failures, _, _| failures == 3 }
    expect(after_three[1]).to be > 2.5 * refresh_interval
    # The first success takes one failure off; it does not reset the count.
    _, recovered = gaps.each_cons(2).find { |(before, _, _), (now, _, _)| now < before }
    expect(recovered[0]).to be >= 2
    expect(recovered[1]).to be > 2.5 * refresh_interval
    expect_one_failure_message(/HTTP 500/)
  end

  it "caps failures at 10 through 429s then 503s, logging each kind of failure once" do
    too_many = bad(status: 429, headers: { "Retry-After" => "1" })
    fault.queue("GET", features, good(v1, '"v1"'), too_many, too_many, too_many)
    fault.answer("GET", features, bad(status: 503))
    c = client(refresh_interval: 0.1)
    expect(c.wait_until_ready(5)).to be(true)
    longest = 0
    wait_for(20, "12 failed refreshes") do
      longest = [longest, c.stats[:refresh_delay].to_f].max
      fault.requests("GET", features).count { |r| r.answer[:bad] } >= 12
    end
    # The wait stops growing at eleven intervals; the failures are counted on.
    expect(longest).to be <= (0.1 * 11) + 1e-6
    stats = c.stats
    expect(stats[:refresh_delay]).to be_within(1e-6).of(0.1 * 11)
    expect(stats[:failures]).to be >= 12
    expect(v1?(c)).to be(true)

    fault.answer("GET", features, good(v2, '"v2"'))
    wait_for(5, "the new flags") { v2?(c) }
    wait_for(5, "the run of failures ended") { c.stats[:failures].zero? }
    expect(c.stats[:refresh_delay]).to be >= (0.1 * 9) - 1e-6 # one interval off per success
    expect_backoff(interval: 0.1)
    wait_for(5, "the recovery logged") { log.string.include?("refresh recovered") }
    expect(log_lines(/forkflag: refresh failed: .*HTTP 429/).size).to eq(1)
    expect(log_lines(/forkflag: refresh failed: .*HTTP 503/).size).to eq(1)
    expect(log_lines(/forkflag: refresh failed/).size).to eq(2)
    expect(log_lines(/forkflag: refresh recovered/).size).to eq(1)
  end

  it "counts an answer slower than the timeout as a failure, and close stays bounded during one" do
    # The slow answer carries new flags: they must not be applied.
    script_fault(good(v2, '"v2"').merge(delay: 2))
    c = client(timeout: 0.5)
    fail_then_recover(c, failures: 2)
    expect_backoff(timeout: 0.5)
    expect_one_failure_message(/timed out after 500 ms/)

    fault.answer("GET", features, bad(good(v1, '"v3"').merge(delay: 5)))
    wait_for(5, "a slow refresh in flight") { fault.requests("GET", features).last.answer[:delay] }
    closed = nil
    took = elapsed { closed = c.close(timeout: 3) }
    expect(closed).to be(true)
    expect(took).to be < 3 + 1
    expect(v2?(c)).to be(true)
  end

  it "bounds the whole request by the timeout when the body trickles in" do
    # Every piece comes well within the timeout; the whole body does not.
    script_fault(good(v2, '"v2"').merge(drip: 0.1))
    expect(v2.bytesize / 16 * 0.1).to be > 1
    c = client(timeout: 0.5)
    fail_then_recover(c, failures: 2)
    expect_backoff(timeout: 0.5)
    expect_one_failure_message(/timed out after 500 ms while reading the response body/)
  end

  it "rejects a truncated body and keeps the last good flags" do
    script_fault(good(v2, '"v2"').merge(truncate: 20))
    c = client
    fail_then_recover(c)
    expect_backoff
    expect_one_failure_message(/response truncated after 20 of \d+ bytes/)
  end

  it "rejects invalid JSON and keeps the last good flags" do
    script_fault(good('{"version":2,"features":[{"name":"beta","enabled":tru'))
    c = client
    fail_then_recover(c)
    expect_backoff
    expect_one_failure_message(/not valid JSON/)
  end

  it "rejects JSON that is not a client-features document and keeps the last good flags" do
    script_fault(good('{"version":2,"features":{"beta":{"enabled":true}}}'))
    c = client
    fail_then_recover(c)
    expect_backoff
    expect_one_failure_message(/at features: invalid type: map, expected a sequence/)
  end

  it "rejects a body over max_payload_bytes whatever its framing, with one message" do
    padding = Array.new(200) { |i| flag("padding-flag-#{i}") }
    big = payload(*padding, flag("beta"))
    expect(big.bytesize).to be > 4096
    expect([v1, v2].map(&:bytesize)).to all(be < 4096)
    fault.queue("GET", features, good(v1, '"v1"'), bad(good(big)), bad(good(big).merge(framing: :chunked)),
                bad(good(big).merge(framing: :close)))
    fault.answer("GET", features, bad(good(big)))
    c = client(max_payload_bytes: 4096)
    fail_then_recover(c, failures: 4)
    expect(fault.requests("GET", features).map { |r| r.answer[:framing] }).to include(:chunked, :close)
    expect(c.flag_names).to eq(%w[alpha beta])
    expect_backoff
    expect_one_failure_message(/larger than the limit of 4096 bytes/)
  end

  it "times out on a hung connection, backs off and recovers; close stays bounded during a hang" do
    script_fault(hang: true)
    c = client(timeout: 0.5)
    fail_then_recover(c, failures: 2)
    expect_backoff(timeout: 0.5)
    expect_one_failure_message(/timed out after 500 ms while waiting for the response/)

    fault.answer("GET", features, bad(hang: true))
    wait_for(5, "a hung refresh") { fault.requests("GET", features).last.answer[:hang] }
    closed = nil
    took = elapsed { closed = c.close(timeout: 3) }
    expect(closed).to be(true) # the hung request timed out after 0.5 s
    expect(took).to be < 3 + 1

    # A client whose request timeout is longer than close's own: close gives
    # up waiting at its bound; the bootstrap answers all along.
    patient = client(timeout: 10, bootstrap: v1)
    wait_for(5, "its hung refresh") do
      fault.requests("GET", features).last.headers["unleash-connection-id"] == patient.stats[:connection_id]
    end
    expect(v1?(patient)).to be(true)
    took = elapsed { closed = patient.close(timeout: 0.3) }
    expect(closed).to be(false)
    expect(took).to be < 0.3 + 1
    expect(v1?(patient)).to be(true)
  end

  it "keeps the previous ETag through a failure and 304s without headers" do
    script_fault(status: 503)
    c = client
    expect(c.wait_until_ready(5)).to be(true)
    wait_for(5, "a failed refresh") { c.stats[:failures] >= 1 }
    expect(v1?(c)).to be(true)
    fault.answer("GET", features, { status: 304 })
    wait_for(5, "the backoff decayed by 304s") { (c.stats[:refresh_delay] - refresh_interval).abs < 1e-6 }
    wait_for(5, "two 304s") { fault.requests("GET", features).count { |r| r.outcome == 304 } >= 2 }
    expect(v1?(c)).to be(true)

    fault.answer("GET", features, good(v2, '"v2"'))
    wait_for(5, "the new flags") { v2?(c) }
    fault.answer("GET", features, { status: 304 })
    wait_for(5, "a poll after v2") { fault.requests("GET", features).last.outcome == 304 }

    polls = fault.requests("GET", features)
    sent_v2 = polls.index { |r| r.answer.dig(:headers, "ETag") == '"v2"' }
    expect(polls.first.headers).not_to have_key("if-none-match")
    expect(polls[1..sent_v2].map { |r| r.headers["if-none-match"] }).to all(eq('"v1"'))
    expect(polls[(sent_v2 + 1)..].map { |r| r.headers["if-none-match"] }).to all(eq('"v2"'))
    expect(polls.last.outcome).to eq(304)
    expect_backoff
  end

  it "sends every documented header, the same on polls, registration and metrics" do
    fault.answer("POST", "/api/client/register", { status: 202 })
    fault.answer("POST", "/api/client/metrics", { status: 202 })
    script_fault(status: 500)
    c = client(instance_id: "fault-instance-1", custom_headers: { "X-Team" => "checkout", "X-Trace-Id" => "t-1" },
               disable_metrics: false, metrics_interval: 0.3)
    fail_then_recover(c, failures: 1)
    expect_backoff
    3.times { enabled?(c, "beta") }
    expect(c.flush).to be(true)
    other = client(instance_id: "fault-instance-2")
    expect(other.wait_until_ready(5)).to be(true)

    connection_id = c.stats[:connection_id]
    expect(connection_id).to match(/\A\h{8}-\h{4}-4\h{3}-[89ab]\h{3}-\h{12}\z/)
    mine, others = fault.requests.partition { |r| r.headers["unleash-instanceid"] == "fault-instance-1" }
    expect(mine.map { |r| [r.verb, r.path] }.uniq)
      .to contain_exactly(["GET", features], ["POST", "/api/client/register"], ["POST", "/api/client/metrics"])
    mine.each do |r|
      h = r.headers
      expect(h["authorization"] == token).to be(true), "Authorization is not the token on #{r.verb} #{r.path}"
      expect(h["unleash-client-spec"]).to eq("5.2.0")
      expect(h["unleash-appname"]).to eq(app_name)
      expect(h["unleash-connection-id"]).to eq(connection_id)
      expect(h["unleash-interval"]).to eq(r.verb == "GET" ? "150" : "300")
      expect(h["unleash-sdk"]).to eq("forkflag:#{Forkflag::VERSION}")
      expect(h["user-agent"]).to start_with("forkflag/#{Forkflag::VERSION} (")
      expect(h.values_at("x-team", "x-trace-id")).to eq(%w[checkout t-1])
    end
    expect(mine.select { |r| r.verb == "POST" }.map { |r| r.headers["content-type"] })
      .to all(eq("application/json"))
    expect(others.map { |r| r.headers["unleash-connection-id"] }.uniq).to eq([other.stats[:connection_id]])
    expect(other.stats[:connection_id]).not_to eq(connection_id)
  end

  it "keeps metrics through failed POSTs and sends each count exactly once, registering once" do
    metrics = "/api/client/metrics"
    fault.answer("POST", "/api/client/register", { status: 202 })
    fault.queue("POST", metrics, *Array.new(3) { bad(status: 500) })
    fault.answer("POST", metrics, { status: 202 })
    script_fault(status: 503)
    c = client(disable_metrics: false, metrics_interval: 0.2)
    expect(c.wait_until_ready(5)).to be(true)
    7.times { enabled?(c, "alpha") }
    5.times { enabled?(c, "beta") }

    wait_for(10, "a metrics POST accepted") { fault.requests("POST", metrics).any? { |r| r.outcome == 202 } }
    expect(v1?(c)).to be(true)
    expect(c.stats[:failures]).to be >= 1
    fault.answer("GET", features, good(v2, '"v2"'))
    wait_for(5, "the new flags") { v2?(c) }
    4.times { enabled?(c, "alpha") }
    6.times { enabled?(c, "beta") }
    expect(c.close(timeout: 3)).to be(true)

    posts = fault.requests("POST", metrics)
    expect(posts.map(&:outcome).first(4)).to eq([500, 500, 500, 202])
    sent = Hash.new { |h, k| h[k] = { yes: 0, no: 0 } }
    posts.select { |r| r.outcome == 202 }.each do |r|
      JSON.parse(r.body).dig("bucket", "toggles").each do |name, t|
        sent[name][:yes] += t["yes"]
        sent[name][:no] += t["no"]
      end
    end
    expect(sent).to eq(made)
    evaluations = made.values.sum { |t| t[:yes] + t[:no] }
    expect(evaluations).to be >= 22
    expect(c.stats[:reported_evaluations]).to eq(evaluations)
    expect(fault.requests("POST", "/api/client/register").size).to eq(1)

    # The reporter backs off as metrics_interval * (1 + failures) too.
    failed = posts.take_while { |r| r.outcome == 500 }
    failed.each_cons(2).with_index(1) do |(a, b), failures|
      expect(b.at - a.at).to be >= (0.2 * (1 + failures)) - slack
    end
    expect(log_lines(/forkflag: metrics failed/).size).to eq(1), log.string
    expect(log_lines(/forkflag: metrics recovered/).size).to eq(1)
  end
end
