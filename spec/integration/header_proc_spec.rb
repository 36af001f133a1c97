# frozen_string_literal: true

require "securerandom"

# custom_headers given as a Proc, called before each request the client's
# thread makes (refresh, register, metrics), against the real Unleash
# server: the server accepts the client only with the Authorization the
# Proc gives (the token option is not one), so every request it answered
# carried the Proc's headers.
RSpec.describe "custom_headers from a Proc, per request", :integration do
  include Forking

  let(:server) { UnleashServer.instance }
  let(:clients) { [] }
  let(:log) { StringIO.new }
  let!(:channel) { Forking::Channel.new }

  after do
    clients.each { |c| c.close(timeout: 5) }
    channel.close
  end

  def client(headers, **options)
    c = Forkflag::Client.new(url: server.url, token: "not-a-token", app_name: "forkflag-headers-#{SecureRandom.hex(3)}",
                             refresh_interval: 0.1, metrics_interval: 0.3, timeout: 2, backup_path: false,
                             logger: Logger.new(log), custom_headers: headers, **options)
    clients << c
    c
  end

  it "calls the Proc before each request, and its Authorization replaces the token" do
    calls = []
    token = server.client_token
    c = client(lambda {
      calls << Process.clock_gettime(Process::CLOCK_MONOTONIC)
      { "Authorization" => token, "X-Request" => calls.size.to_s }
    })
    expect(c.wait_until_ready(10)).to be(true)
    UnleashServer.wait_for(timeout: 10, message: "10 refreshes") { c.stats[:refreshes] >= 10 }
    stats = c.stats
    expect(stats[:failures]).to eq(0)
    # One call at creation, then one per request: at least one per refresh.
    expect(calls.size).to be >= stats[:refreshes] + 1
    expect(log.string).not_to include("custom_headers raised")
  end

  it "sends the last headers the Proc gave when it raises, and logs it" do
    token = server.client_token
    calls = 0
    c = client(lambda {
      calls += 1
      raise KeyError, "vault unreachable" if calls > 3

      { "Authorization" => token }
    })
    expect(c.wait_until_ready(10)).to be(true)
    before = c.stats[:refreshes]
    UnleashServer.wait_for(timeout: 10, message: "5 more refreshes") { c.stats[:refreshes] >= before + 5 }
    expect(c.stats[:failures]).to eq(0)
    expect(log.string).to include("custom_headers raised KeyError: vault unreachable")
  end

  it "is called in a forked child, by the child, for the child's requests" do
    token = server.client_token
    c = client(lambda {
      channel.send_message(pid: Process.pid)
      { "Authorization" => token }
    })
    expect(c.wait_until_ready(10)).to be(true)
    pid = fork_child do
      c.enabled?("anything") # starts the child's thread
      deadline = now + 10
      sleep 0.05 until c.stats[:refreshes] >= 3 || now > deadline
      if c.stats[:refreshes] < 3
        raise "the child's client made #{c.stats[:refreshes]} refreshes, #{c.stats[:failures]} failed"
      end
    end
    expect(reap(pid, deadline: now + 20).first&.success?).to be(true)
    expect(channel.messages.count { |m| m[:pid] == pid }).to be >= 3
  end
end
