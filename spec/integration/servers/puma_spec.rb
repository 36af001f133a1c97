# frozen_string_literal: true

# Puma 5.6 in cluster mode (preload_app!, 3 workers) serving
# examples/config.ru with `plugin :forkflag` (examples/puma.rb), against the
# real Unleash server.
RSpec.describe "Puma 5.6 cluster with plugin :forkflag", :integration do
  include_context "server processes", "puma"

  let(:shutdown_timeout) { 10 }

  def boot(flags, variants, **env)
    command = [Gem.ruby, ServerProcess.executable("puma"), "-C", "examples/puma.rb", "examples/config.ru"]
    server = ServerProcess.new(command, name: "puma",
                                        env: unleash_env(unleash, app_name: app_name, flags: flags, variants: variants,
                                                                  refresh_interval: refresh_interval)
                                               .merge("SHUTDOWN_TIMEOUT" => shutdown_timeout, **env))
    serve(server)
    server
  end

  it "serves a flip from every worker within refresh_interval + 1 s, reports exact metrics, stops on TERM" do
    flag = create_off_flag(unleash, "puma")
    banner = create_variant_flag(unleash, "puma-banner")
    server = boot([flag], [banner])

    before = until_pids(server, 3)
    pids = before.map(&:pid).uniq
    expect(before.map { |r| r.flags[flag] }).to all(be(false))
    expect(before.map { |r| r.body["generation"] }.uniq).to eq([1])

    unleash.flip(flag, on: true)
    flipped_at = ServerProcess.now
    delays, after = expect_flip_everywhere(server, pids, flag, true, flipped_at: flipped_at, bound: bound)
    responses = before + after
    expect(responses.map(&:pid).uniq.sort).to eq(pids.sort) # no worker restarted
    expect(after.last.body["native_threads"]).to eq(1)
    warn("puma: flip seen by each worker after #{delays.values.map { |d| d.round(2) }.sort} s")
    # The client's log thread is marked fork-safe: Puma does not warn about it.
    expect(server.log).to include("Preloading application")
    expect(server.log).not_to include("started in app boot")

    expect_clean_stop(server, signal: "TERM", timeout: shutdown_timeout + 5)
    # Metrics every 120 s: what the server has came from the workers' flush
    # at shutdown (on_worker_shutdown).
    expect_server_metrics(unleash, app_name, evaluations_made(responses), unanswered: server.unanswered)
  end

  # Puma 5.6 reforks only without preload_app!: worker 0 loads the app
  # (creating the client) and forks the other workers, at boot and again on
  # each refork.
  it "with fork_worker, reforked workers (forked from worker 0) serve a flip too" do
    flag = create_off_flag(unleash, "puma-refork")
    server = boot([flag], [], "FORK_WORKER" => 0)

    first = until_pids(server, 3)
    first_pids = first.map(&:pid).uniq
    expect(first.map { |r| r.body["generation"] }.tally.keys.sort).to eq([1, 2]) # worker 0 and its forks
    server.signal("URG") # refork: worker 0 forks workers 1 and 2 again
    reforked = server.request_until(timeout: 30, what: "two reforked workers") do |seen|
      (seen.map(&:pid).uniq - first_pids).size >= 2
    end
    new_pids = reforked.map(&:pid).uniq - first_pids
    expect(reforked.select { |r| new_pids.include?(r.pid) }.map { |r| r.body["generation"] }.uniq).to eq([2])
    worker0 = first.select { |r| r.body["generation"] == 1 }.map(&:pid).uniq
    expect(worker0.size).to eq(1)
    current = new_pids + worker0 # worker 0 keeps serving: it must see the flip too

    unleash.flip(flag, on: true)
    flipped_at = ServerProcess.now
    _delays, after = expect_flip_everywhere(server, current, flag, true, flipped_at: flipped_at, bound: bound)

    expect_clean_stop(server, signal: "TERM", timeout: shutdown_timeout + 5)
    expect_server_metrics(unleash, app_name, evaluations_made(first + reforked + after), unanswered: server.unanswered)
  end
end
