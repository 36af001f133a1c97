# frozen_string_literal: true

require "securerandom"
require "tmpdir"

# Real forks of a client created once, against the real Unleash server.
RSpec.describe "a client across fork chains", :integration do
  let(:server) { UnleashServer.instance }
  let!(:app_name) { "forkflag-fork-#{SecureRandom.hex(4)}" }
  let!(:channel) { Forking::Channel.new } # created before any fork
  let(:tmp) { Dir.mktmpdir("forkflag-fork") }
  let(:pids) { [] }
  let(:refresh_interval) { 0.2 }

  after do
    Forking.kill_all(pids)
    channel.close
    FileUtils.rm_rf(tmp)
  end

  def new_client(**options)
    Forkflag::Client.new(url: server.url, token: server.client_token, app_name: app_name,
                         refresh_interval: refresh_interval, metrics_interval: 60, timeout: 2,
                         backup_path: false, logger: Logger.new(nil), **options)
  end

  def flag_with_default_strategy
    name = "fork-#{SecureRandom.hex(4)}"
    server.create_flag(name)
    server.add_strategy(name, strategy_name: "default")
    name
  end

  def realtime
    Process.clock_gettime(Process::CLOCK_REALTIME)
  end

  # One generation of the chain: reports, forks the next, keeps serving
  # (evaluating) until told to stop, then closes and reaps its child.
  def serve(gen, last_gen, client, flag, stop_file)
    value = client.enabled?(flag)
    connection = client.stats[:connection_id]
    channel.send_message(gen: gen, event: "ready", pid: Process.pid, value: value,
                         fork_generation: ForkSafe.generation, connection_id: connection)
    child = Forking.fork_child { serve(gen + 1, last_gen, client, flag, stop_file) } if gen < last_gen
    channel.send_message(gen: gen, event: "forked", child: child) if child
    deadline = Forking.now + 120
    until File.exist?(stop_file) || Forking.now > deadline
      now = client.enabled?(flag)
      channel.send_message(gen: gen, event: "saw", value: now, at: realtime) if now != value
      value = now
      sleep 0.005
    end
    finish(gen, client, connection, child)
  end

  def finish(gen, client, first_connection, child)
    stats = client.stats
    channel.send_message(gen: gen, event: "done", connection_id: stats[:connection_id],
                         first_connection_id: first_connection, refreshes: stats[:refreshes])
    client.close
    Forking.reap(child, deadline: Forking.now + 20) if child
  end

  def of(messages, event)
    messages.select { |m| m[:event] == event }
  end

  it "keeps all five generations serving, each seeing a flip within refresh_interval + 1 s" do
    flag = flag_with_default_strategy
    stop_file = File.join(tmp, "stop")
    pids << Forking.fork_child do
      client = new_client
      client.wait_until_ready(10)
      serve(1, 5, client, flag, stop_file)
    end

    ready = of(channel.wait_until(timeout: 60, what: "5 generations ready") { |m| of(m, "ready").size == 5 }, "ready")
    pids.concat(ready.map { |m| m[:pid] })
    expect(ready.map { |m| m[:value] }).to all(be(false))
    expect(ready.sort_by { |m| m[:gen] }.map { |m| m[:fork_generation] }).to eq(
      (0...5).map { |i| ready.min_by { |m| m[:gen] }[:fork_generation] + i }
    )
    expect(ready.map { |m| m[:connection_id] }.uniq.size).to eq(5)

    [true, false].each do |wanted|
      flipped_at = server.flip(flag, on: wanted)
      seen = channel.wait_until(timeout: 10, what: "all generations see #{wanted}") do |m|
        of(m, "saw").count { |s| s[:value] == wanted } == 5
      end
      delays = of(seen, "saw").select { |s| s[:value] == wanted }.to_h { |s| [s[:gen], s[:at] - flipped_at] }
      expect(delays.keys.sort).to eq([1, 2, 3, 4, 5])
      expect(delays.values).to all(be < refresh_interval + 1), "delays by generation: #{delays.inspect}"
    end

    File.write(stop_file, "")
    done = of(channel.wait_until(timeout: 30, what: "all done") { |m| of(m, "done").size == 5 }, "done")
    # Each process kept its own thread through its own fork: same connection.
    done.each { |d| expect(d[:connection_id]).to eq(d[:first_connection_id]) }
    expect(done.map { |d| d[:refreshes] }).to all(be >= 3)
    status, late = Forking.reap(pids.first, deadline: Forking.now + 30)
    expect(late).to be(false)
    expect(status.exitstatus).to eq(0)
  end

  it "leaves no process of a three-level fork chain holding an ancestor's connection before it evaluates" do
    port = URI(server.url).port
    # Each generation: counts its connections to the server before it
    # touches the client, then evaluates, waits for its own thread's
    # connection, and forks the next.
    generation = lambda do |gen, client|
      held = Connections.to_port(port)
      client.enabled?("any")
      raise "refresh failed in generation #{gen}" unless client.refresh(timeout: 10)

      own = UnleashServer.wait_for(timeout: 10, interval: 0.02, message: "generation #{gen}'s connection") do
        open = Connections.to_port(port)
        open if open.positive?
      end
      channel.send_message(gen: gen, event: "counted", before: held, own: own)
      child = Forking.fork_child { generation.call(gen + 1, client) } if gen < 4
      Forking.reap(child, deadline: Forking.now + 60) if child
      client.close
    end
    pids << Forking.fork_child do
      client = new_client
      generation.call(1, client)
    end
    counted = channel.wait_until(timeout: 90, what: "four generations counted") { |m| m.size == 4 }
    status, late = Forking.reap(pids.first, deadline: Forking.now + 30)
    expect([late, status&.exitstatus]).to eq([false, 0])
    counted = counted.sort_by { |m| m[:gen] }
    expect(counted.map { |m| m[:own] }).to eq([1, 1, 1, 1])
    # The forked generations (a child, a grandchild, a great-grandchild)
    # held none of their ancestors' connections before their own.
    expect(counted.drop(1).map { |m| m[:before] }).to eq([0, 0, 0])
  end

  it "reports exactly the evaluations made across three generations, none lost or doubled" do
    flag = "counted-#{SecureRandom.hex(4)}"
    server.create_flag(flag)
    server.add_strategy(flag, strategy_name: "default",
                              constraints: [{ contextName: "userId", operator: "NOT_IN", values: ["no"] }])
    server.enable(flag)
    counts = { 1 => [7, 3, 5, 2], 2 => [11, 4, 6, 1], 3 => [13, 9, 0, 0] } # yes/no before and after forking
    evaluate = lambda do |client, yes, no|
      yes.times { client.enabled?(flag, { userId: "yes" }) }
      no.times { client.enabled?(flag, { userId: "no" }) }
    end
    generation = lambda do |gen, client|
      yes_before, no_before, yes_after, no_after = counts.fetch(gen)
      evaluate.call(client, yes_before, no_before) # counted, not yet reported, at the fork
      child = Forking.fork_child { generation.call(gen + 1, client) } if gen < 3
      evaluate.call(client, yes_after, no_after)
      Forking.reap(child, deadline: Forking.now + 30) if child
      client.close # reports this process's counts
      channel.send_message(gen: gen, event: "done", reported: client.stats[:reported_evaluations])
    end
    pids << Forking.fork_child do
      client = new_client
      client.wait_until_ready(10)
      UnleashServer.wait_for(timeout: 10, message: "flag visible") { client.flag_names.include?(flag) }
      generation.call(1, client)
    end
    done = channel.wait_until(timeout: 60, what: "three generations done") { |m| m.size == 3 }
    status, late = Forking.reap(pids.first, deadline: Forking.now + 30)
    expect([late, status&.exitstatus]).to eq([false, 0])

    yes = counts.values.sum { |c| c[0] + c[2] }
    no = counts.values.sum { |c| c[1] + c[3] }
    expect(done.sum { |d| d[:reported] }).to eq(yes + no)
    totals = server.settled_totals(flag, { yes: yes, no: no }, app_name: app_name)
    sleep 1 # anything doubled would arrive now
    expect(server.yes_no_totals(flag, app_name: app_name)).to eq(totals)
    expect(totals.slice(:yes, :no)).to eq(yes: yes, no: no)
  end
end
