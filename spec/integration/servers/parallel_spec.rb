# frozen_string_literal: true

require "parallel"
require "securerandom"

# Parallel.map(in_processes: 4) with a client created before: no hooks at
# all, only forkflag's automatic fork detection.
RSpec.describe "Parallel.map(in_processes: 4) with a client created before", :integration do
  let(:unleash) { UnleashServer.instance }
  let!(:app_name) { "forkflag-parallel-#{SecureRandom.hex(4)}" }
  let!(:channel) { Forking::Channel.new } # before the forks
  let(:refresh_interval) { 0.5 }

  after { channel.close }

  it "evaluates in every process, each sees a flip within refresh_interval + 1 s, and the metrics are exact" do
    flag = "parallel-#{SecureRandom.hex(4)}"
    unleash.create_flag(flag)
    unleash.add_strategy(flag, strategy_name: "default")
    client = Forkflag::Client.new(url: unleash.url, token: unleash.client_token, app_name: app_name,
                                  refresh_interval: refresh_interval, metrics_interval: 120, timeout: 3,
                                  backup_path: false, logger: Logger.new(nil))
    expect(client.wait_until_ready(10)).to be(true)
    flipped = File.join(Dir.mktmpdir("forkflag-parallel"), "flipped")

    flipper = Thread.new do
      channel.wait_until(timeout: 60, what: "4 processes evaluating") { |m| m.map { |x| x[:pid] }.uniq.size >= 4 }
      File.write(flipped, unleash.flip(flag, on: true).to_s)
    end

    results = Parallel.map(1..4, in_processes: 4) do |item|
      counts = { yes: 0, no: 0 }
      evaluate = lambda do
        value = client.enabled?(flag)
        counts[value ? :yes : :no] += 1
        value
      end
      first = evaluate.call
      channel.send_message(pid: Process.pid, item: item)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 30
      saw_at = nil
      until saw_at || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        saw_at = Process.clock_gettime(Process::CLOCK_REALTIME) if evaluate.call && File.exist?(flipped)
        sleep 0.005
      end
      flipped_at = File.exist?(flipped) ? Float(File.read(flipped)) : nil
      { pid: Process.pid, first: first, delay: saw_at && flipped_at && (saw_at - flipped_at), counts: counts,
        generation: ForkSafe.generation }
    end
    expect(flipper.join(60)).to be_truthy

    expect(results.map { |r| r[:pid] }.uniq.size).to eq(4)
    expect(results.map { |r| r[:first] }).to all(be(false))
    expect(results.map { |r| r[:generation] }).to all(eq(1))
    expect(results.map { |r| r[:delay] }).to all(be_a(Float).and(be <= refresh_interval + 1.0))
    # The children exited normally: the client's at_exit sent their metrics.
    expected = results.each_with_object({ yes: 0, no: 0 }) do |r, sum|
      sum[:yes] += r[:counts][:yes]
      sum[:no] += r[:counts][:no]
    end
    actual = nil
    begin
      unleash.wait_for(timeout: 15, interval: 0.25, message: "metrics #{expected}") do
        actual = unleash.yes_no_totals(flag, app_name: app_name).slice(:yes, :no)
        actual == expected
      end
    rescue UnleashServer::TimeoutError
      nil # the comparison below shows the difference
    end
    expect(actual).to eq(expected)
    client.close
  end
end
