# frozen_string_literal: true

require "securerandom"
require "tmpdir"

# The thread-backed client against a real unleash-server 8.2.0 (started by
# the suite itself, see spec/support/unleash_server.rb).
RSpec.describe "Forkflag::Client against a real Unleash server", :integration do
  let(:server) { UnleashServer.instance }
  let(:app_name) { "forkflag-it-#{SecureRandom.hex(4)}" }
  let(:log) { StringIO.new }
  let(:logger) { Logger.new(log, level: Logger::DEBUG) }
  let(:clients) { [] }
  let(:refresh_interval) { 0.2 }

  def unique(name)
    "#{name}-#{SecureRandom.hex(4)}"
  end

  def client(**options)
    c = Forkflag::Client.new(url: server.url, token: server.client_token, app_name: app_name,
                             refresh_interval: refresh_interval, metrics_interval: 0.5, timeout: 2,
                             logger: logger, backup_path: false, **options)
    clients << c
    c
  end

  def wait_for(timeout, message, &)
    UnleashServer.wait_for(timeout: timeout, interval: 0.05, message: message, &)
  end

  def elapsed
    start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    yield
    Process.clock_gettime(Process::CLOCK_MONOTONIC) - start
  end

  after { clients.each { |c| c.close(timeout: 5) } }

  it "picks up each change made on the server within refresh_interval + 1 s" do
    name = unique("flip")
    server.create_flag(name)
    server.add_strategy(name, strategy_name: "flexibleRollout",
                              parameters: { rollout: 100, stickiness: "default", groupId: name })
    c = client
    expect(c.wait_until_ready(10)).to be(true)
    expect(c).to be_ready
    expect(c.enabled?(name, { userId: "1" })).to be(false)

    server.flip(name, on: true)
    took = elapsed { wait_for(refresh_interval + 1, "#{name} on") { c.enabled?(name, { userId: "1" }) } }
    expect(took).to be < refresh_interval + 1

    server.disable(name)
    wait_for(refresh_interval + 1, "#{name} off") { !c.enabled?(name, { userId: "1" }) }

    strategy = server.strategies(name).first
    parameters = { rollout: 100, stickiness: "default", groupId: name }
    constraints = [{ contextName: "plan", operator: "IN", values: ["pro"] }]
    server.update_strategy(name, strategy.fetch("id"), strategy_name: "flexibleRollout",
                                                       parameters: parameters, constraints: constraints)
    server.enable(name)
    wait_for(refresh_interval + 1, "constraint") { c.enabled?(name, { userId: "1", properties: { plan: "pro" } }) }
    expect(c.enabled?(name, { userId: "1", properties: { plan: "free" } })).to be(false)
  end

  it "reports exactly the evaluations made, with variants, and registers the instance" do
    name = unique("counted")
    server.create_flag(name)
    server.add_strategy(name, strategy_name: "flexibleRollout",
                              parameters: { rollout: 100, stickiness: "default", groupId: name },
                              constraints: [{ contextName: "userId", operator: "NOT_IN", values: ["blocked"] }],
                              variants: [{ name: "red", weight: 500, weightType: "variable", stickiness: "default" },
                                         { name: "blue", weight: 500, weightType: "variable",
                                           stickiness: "default" }])
    server.enable(name)
    c = client(instance_id: "it-#{app_name}")
    c.wait_until_ready(10)
    wait_for(5, "flag visible") { c.flag_names.include?(name) }

    yes = 37.times.count { |i| c.enabled?(name, { userId: "u#{i}" }) }
    no = 13.times.count { c.enabled?(name, { userId: "blocked" }) }
    variants = Hash.new(0)
    20.times { |i| variants[c.variant(name, { userId: "v#{i}" }).name] += 1 }
    5.times { variants[c.variant(name, { userId: "blocked" }).name] += 1 }
    expect([yes, no]).to eq([37, 0])
    expect(c.flush).to be(true)

    expected = { yes: 37 + 20, no: 13 + 5, variants: variants }
    expect(server.settled_totals(name, expected, app_name: app_name)).to eq(expected)
    expect(c.stats[:reported_evaluations]).to eq(75)

    instances = server.wait_for_instance(app_name, "it-#{app_name}")
    expect(instances).to include("it-#{app_name}")
  end

  it "sends what was counted when closed, and never counts twice" do
    name = unique("closing")
    server.create_flag(name)
    server.add_strategy(name, strategy_name: "default")
    server.enable(name)
    c = client(metrics_interval: 60)
    c.wait_until_ready(10)
    wait_for(5, "flag visible") { c.flag_names.include?(name) }
    11.times { c.enabled?(name) }
    expect(c.close).to be(true)
    expect(c.close).to be(true)
    expected = { yes: 11, no: 0, variants: {} }
    expect(server.settled_totals(name, expected, app_name: app_name)).to eq(expected)
    sleep 1 # anything sent twice would arrive now
    expect(server.yes_no_totals(name, app_name: app_name)).to eq(expected)
  end

  it "counts a hot flag exactly, past what one snapshot counter holds between two reports" do
    name = unique("hot")
    server.create_flag(name)
    server.add_strategy(name, strategy_name: "default",
                              variants: [{ name: "blue", weight: 1000, weightType: "variable", stickiness: "default" }])
    server.enable(name)
    c = client(metrics_interval: 60)
    c.wait_until_ready(10)
    wait_for(5, "flag visible") { c.flag_names.include?(name) }
    # A snapshot counter keeps 16 bits and moves half its range to a
    # full-width overflow counter each time it gets there. Half the calls
    # name the flag with a String built here, half with objects the client
    # remembers (a frozen String, a Symbol): the two ways to find a flag
    # count into the same counters.
    remembered = -name
    symbol = name.to_sym
    50_002.times { c.enabled?(name) }
    50_001.times { c.enabled?(remembered) }
    expect(c.__send__(:_remembers?, remembered)).to be(true)
    35_001.times { c.variant(name) }
    35_000.times { c.variant(symbol) }
    expect(c.__send__(:_remembers?, symbol)).to be(true)
    expect(c.__send__(:_remembers?, name)).to be(false)
    expect(c.flush).to be(true)
    expected = { yes: 170_004, no: 0, variants: { "blue" => 70_001 } }
    expect(server.settled_totals(name, expected, app_name: app_name)).to eq(expected)
    expect(c.stats[:reported_evaluations]).to eq(170_004)
  end

  it "counts evaluations of a flag created on the server since its last refresh" do
    c = client(refresh_interval: 60, metrics_interval: 60)
    expect(c.wait_until_ready(10)).to be(true)
    name = unique("created-later")
    server.create_flag(name)
    server.add_strategy(name, strategy_name: "default")
    server.enable(name)
    expect(c.flag_names).not_to include(name) # not fetched yet: answers false
    4.times { expect(c.enabled?(name)).to be(false) }
    expect(c.variant(name).name).to eq("disabled")
    expect(c.flush).to be(true)
    expected = { yes: 0, no: 5, variants: { "disabled" => 1 } }
    expect(server.settled_totals(name, expected, app_name: app_name)).to eq(expected)
    expect(c.stats[:reported_evaluations]).to eq(5)
  end

  it "stops polling with one clear error when the token is refused, never printing the token" do
    token = "*:development.#{SecureRandom.hex(20)}"
    kept = FlagPayloads.payload(FlagPayloads.flag("kept"))
    c = Forkflag::Client.new(url: server.url, token: token, app_name: app_name, refresh_interval: 0.1,
                             logger: logger, backup_path: false, bootstrap: kept)
    clients << c
    wait_for(5, "polling stopped") { c.stats[:polling_stopped] }
    sleep 0.5
    Forkflag::Logging.drain
    expect(log.string.scan("refused the token (HTTP 401)").size).to eq(1)
    expect(log.string).to include("polling stopped")
    expect(log.string).not_to include(token)
    expect(c.stats[:refreshes]).to eq(0)
    expect(c.enabled?("kept")).to be(true)
    expect(c.ready?).to be(false)
  end

  it "serves the backup on a cold start with the server unreachable" do
    Dir.mktmpdir do |dir|
      backup = File.join(dir, "flags.json")
      name = unique("backed-up")
      server.create_flag(name)
      server.add_strategy(name, strategy_name: "default")
      server.enable(name)
      first = client(backup_path: backup)
      wait_for(10, "backup written") { File.exist?(backup) && File.read(backup).include?(name) }
      first.close

      dead = TCPServer.new("127.0.0.1", 0)
      port = dead.addr[1]
      dead.close
      cold = Forkflag::Client.new(url: "http://127.0.0.1:#{port}/api", token: server.client_token,
                                  app_name: app_name, backup_path: backup, refresh_interval: 0.2, logger: logger)
      clients << cold
      expect(cold.enabled?(name)).to be(true)
      expect(cold.ready?).to be(false)
      wait_for(5, "failure logged") do
        Forkflag::Logging.drain
        log.string.include?("refresh failed")
      end
      expect(cold.enabled?(name)).to be(true)
    end
  end

  it "ignores a corrupt backup with a warning" do
    Dir.mktmpdir do |dir|
      backup = File.join(dir, "flags.json")
      File.write(backup, '{"version":2,"features":[{"name":')
      c = client(backup_path: backup)
      expect(c.wait_until_ready(10)).to be(true)
      expect(log.string).to match(/ignoring the backup file: invalid flags payload/)
    end
  end

  it "keeps answering while the server is stopped and recovers when it is back" do
    own = UnleashServer.start_private
    name = unique("outage")
    own.create_flag(name)
    own.add_strategy(name, strategy_name: "default")
    own.enable(name)
    c = Forkflag::Client.new(url: own.url, token: own.client_token, app_name: app_name, refresh_interval: 0.2,
                             timeout: 1, logger: logger, backup_path: false)
    clients << c
    wait_for(10, "ready") { c.enabled?(name) }

    own.halt
    wait_for(5, "failure noticed") { c.stats[:failures].positive? }
    expect(c.enabled?(name)).to be(true)
    sleep 1
    expect(c.enabled?(name)).to be(true)

    own.resume
    own.disable(name)
    # Backoff after a few failures is at most refresh_interval * 11.
    wait_for((0.2 * 11) + 2, "recovered") { !c.enabled?(name) }
    Forkflag::Logging.drain
    expect(log.string.scan("refresh failed").size).to be_between(1, 2)
    expect(log.string).to include("refresh recovered")
  ensure
    own&.stop
  end
end
