# frozen_string_literal: true

require "open3"
require "rbconfig"
require "securerandom"

# Process exit against a server that stops answering: the at_exit close is
# bounded by exit_timeout (not by the request timeout), for all the
# process's clients at once. The server is a real socket server that
# serves the flags, then never answers metrics (a hang the real Unleash
# server cannot be made to produce).
RSpec.describe "process exit with a hung server", :integration do
  include FlagPayloads

  let(:fault) { FaultServer.new }
  let(:lib) { File.expand_path("../../lib", __dir__) }

  before do
    fault.answer("GET", "/api/client/features", FaultServer.json(payload(flag("on"))))
    fault.answer("POST", "/api/client/register", { status: 202 })
    fault.answer("POST", "/api/client/metrics", { hang: true })
  end

  after { fault.stop(deadline: 5) }

  # Runs a Ruby process with `clients` clients of the fault server (request
  # timeout 30 s) that evaluate, wait until ready, then exit normally; returns
  # [seconds from the exit's start to the process's end, its stderr].
  def exit_time(clients:, options: "")
    script = <<~RUBY
      require "forkflag"
      clients = Array.new(#{clients}) do |i|
        Forkflag::Client.new(url: #{fault.url.inspect}, token: "t", app_name: "exit-\#{i}", timeout: 30,
                             metrics_interval: 60, backup_path: false #{options})
      end
      clients.each { |c| abort("not ready") unless c.wait_until_ready(10) && c.enabled?("on") }
      $stdout.puts Process.clock_gettime(Process::CLOCK_MONOTONIC)
      $stdout.flush
    RUBY
    out, err, status = Open3.capture3(RbConfig.ruby, "-I", lib, "-e", script)
    ended = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    expect(status).to be_success, err
    [ended - Float(out.lines.last), err]
  end

  # The metrics requests the server received (waiting for `expected`).
  def metrics_requests(expected)
    UnleashServer.wait_for(timeout: 5, message: "#{expected} metrics requests") do
      fault.requests("POST", "/api/client/metrics").size >= expected
    end
    fault.requests("POST", "/api/client/metrics").size
  end

  it "waits at most exit_timeout for the metrics, not the request timeout, and the server saw the attempt" do
    took, = exit_time(clients: 1, options: ", exit_timeout: 1")
    expect(took).to be < 10 # the request timeout is 30 s
    expect(metrics_requests(1)).to eq(1)
  end

  it "parks every client before a fork within exit_timeout while the server hangs a refresh" do
    fault.answer("GET", "/api/client/features", { hang: true })
    clients = Array.new(2) do |i|
      Forkflag::Client.new(url: fault.url, token: "t", app_name: "park-#{i}", timeout: 30, refresh_interval: 60,
                           exit_timeout: 1, backup_path: false, disable_metrics: true, logger: Logger.new(nil))
    end
    UnleashServer.wait_for(timeout: 10, message: "both refreshes hung") do
      fault.requests("GET", "/api/client/features").size >= 2
    end
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    parked = Forkflag::Client.park_all
    took = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    expect(parked).to be(false) # the hung threads did not stop in time
    expect(took).to be < 10 # the request timeout is 30 s, for each client
    expect(clients.map { |c| c.stats[:state] }).to all(eq(:parked))
  ensure
    fault.stop(deadline: 5) # the hung requests end: the threads go
    clients&.each { |c| c.close(timeout: 5) }
  end

  it "bounds exit by the default exit_timeout (2 s) whatever the number of clients" do
    took, = exit_time(clients: 3)
    # Three clients each waiting their exit_timeout in turn would take 6 s.
    expect(took).to be < 5.5
    expect(metrics_requests(3)).to eq(3)
  end
end
