# frozen_string_literal: true

require "securerandom"

# Custom strategies against a real unleash-server: a strategy defined on
# the server, registered once in the parent, answering in forked workers,
# with the evaluations counted in the server's metrics.
RSpec.describe "custom strategies against a real Unleash server", :integration do
  include Forking

  let(:server) { UnleashServer.instance }
  let(:app_name) { "forkflag-custom-#{SecureRandom.hex(4)}" }
  let!(:channel) { Forking::Channel.new }

  let(:clients) { [] }

  after do
    channel.close
    clients.each { |c| c.close(timeout: 5) }
  end

  it "answers in forked workers, with constraints and variants, and reports exactly the evaluations made" do
    strategy = server.define_strategy("tenant-#{SecureRandom.hex(3)}", parameters: ["tenants"])
    name = "custom-#{SecureRandom.hex(4)}"
    server.create_flag(name)
    server.add_strategy(name, strategy_name: strategy, parameters: { tenants: "acme,globex" },
                              constraints: [{ contextName: "userId", operator: "NOT_IN", values: ["blocked"] }],
                              variants: [{ name: "blue", weight: 1000, weightType: "variable", stickiness: "default" }])
    server.enable(name)
    calls = 0
    tenant = lambda do |parameters, context|
      calls += 1
      parameters.fetch("tenants").split(",").include?(context.get_by_name("tenant"))
    end
    client = Forkflag::Client.new(url: server.url, token: server.client_token, app_name: app_name,
                                  refresh_interval: 0.2, metrics_interval: 0.3, timeout: 2, backup_path: false,
                                  strategies: { strategy => tenant })
    clients << client
    expect(client.wait_until_ready(10)).to be(true)
    UnleashServer.wait_for(timeout: 10, message: "#{name} visible") { client.flag_names.include?(name) }
    expect(client.enabled?(name, { userId: "1", tenant: "acme" })).to be(true)
    # Registered with the built-in strategies and the application's.
    UnleashServer.wait_for(timeout: 10, message: "#{strategy} registered") do
      server.application(app_name)&.fetch("strategies", [])&.any? { |s| (s.is_a?(Hash) ? s["name"] : s) == strategy }
    end

    pids = Array.new(2) do |worker|
      fork_child do
        answers = [
          client.enabled?(name, { userId: "1", properties: { tenant: "acme" } }),
          client.enabled?(name, { userId: "blocked", properties: { tenant: "acme" } }),
          client.enabled?(name, { userId: "1", properties: { tenant: "initech" } }),
          client.variant(name, Forkflag::Context.new(user_id: "2", properties: { tenant: "globex" })).name
        ]
        client.flush(timeout: 5)
        channel.send_message(worker: worker, pid: Process.pid, answers: answers, calls: calls)
      end
    end
    messages = channel.wait_until(timeout: 30, what: "both workers") { |m| m.size == 2 }
    pids.each { |pid| expect(reap(pid, deadline: now + 20).first&.success?).to be(true) }
    expect(messages.map { |m| m[:answers] }).to all(eq([true, false, false, "blue"]))
    expect(messages.map { |m| m[:pid] }.uniq.size).to eq(2)
    # The strategy ran in each worker (the parent's count was 1 before the fork).
    expect(messages.map { |m| m[:calls] }).to all(be >= 4)

    # The parent's one evaluation and each worker's four, counted once each.
    client.flush(timeout: 5)
    expected = { yes: 1 + (2 * 2), no: 2 * 2, variants: { "blue" => 2 } }
    expect(server.settled_totals(name, expected, app_name: app_name)).to include(yes: 5, no: 4)
  end
end
