# frozen_string_literal: true

# Unicorn 6 (preload_app true, 3 workers) serving examples/config.ru with
# Forkflag::Unicorn.configure (examples/unicorn.conf.rb), against the real
# Unleash server.
RSpec.describe "Unicorn 6 with Forkflag::Unicorn.configure", :integration do
  include_context "server processes", "unicorn"

  def boot(flags, variants)
    command = [Gem.ruby, ServerProcess.executable("unicorn"), "-c", "examples/unicorn.conf.rb", "examples/config.ru"]
    server = ServerProcess.new(command, name: "unicorn",
                                        env: unleash_env(unleash, app_name: app_name, flags: flags, variants: variants,
                                                                  refresh_interval: refresh_interval))
    serve(server)
    server
  end

  it "serves a flip from every worker within refresh_interval + 1 s, reports exact metrics, stops on TERM" do
    flag = create_off_flag(unleash, "unicorn")
    banner = create_variant_flag(unleash, "unicorn-banner")
    server = boot([flag], [banner])

    before = until_pids(server, 3)
    pids = before.map(&:pid).uniq
    expect(before.map { |r| r.flags[flag] }).to all(be(false))

    unleash.flip(flag, on: true)
    flipped_at = ServerProcess.now
    delays, after = expect_flip_everywhere(server, pids, flag, true, flipped_at: flipped_at, bound: bound)
    responses = before + after
    expect(responses.map(&:pid).uniq.sort).to eq(pids.sort)
    warn("unicorn: flip seen by each worker after #{delays.values.map { |d| d.round(2) }.sort} s")

    # TERM is Unicorn's quick shutdown (workers exit! at once): the workers'
    # handlers still send their metrics (every 120 s otherwise).
    expect_clean_stop(server, signal: "TERM", timeout: 15)
    expect_server_metrics(unleash, app_name, evaluations_made(responses), unanswered: server.unanswered)
  end

  it "respawns a KILLed worker that serves the current flags at once, and stops on QUIT" do
    flag = create_off_flag(unleash, "unicorn-kill")
    server = boot([flag], [])

    before = until_pids(server, 3)
    pids = before.map(&:pid).uniq
    unleash.flip(flag, on: true)
    _delays, flipped = expect_flip_everywhere(server, pids, flag, true, flipped_at: ServerProcess.now, bound: bound)

    victim = pids.first
    Process.kill("KILL", victim)
    killed_at = ServerProcess.now
    # The master was parked before the flip: the new worker starts from the
    # old snapshot and must refresh at once, not after an interval.
    respawned = server.request_until(timeout: 20, what: "a respawned worker serving") do |seen|
      seen.any? { |r| !pids.include?(r.pid) }
    end
    newcomer = (respawned.map(&:pid).uniq - pids).first
    _delays, later = expect_flip_everywhere(server, [newcomer], flag, true, flipped_at: killed_at, bound: 1.0)
    from_newcomer = (respawned + later).select { |r| r.pid == newcomer }
    warn("unicorn: the respawned worker's first answers: #{from_newcomer.first(3).map { |r| r.flags[flag] }}")

    expect_clean_stop(server, signal: "QUIT", timeout: 15)
    # The KILLed worker could send nothing; every other worker's evaluations
    # are all there (sent at exit).
    survivors = (pids - [victim]) + [newcomer]
    expect_server_metrics(unleash, app_name, evaluations_made(before + flipped + respawned + later, pids: survivors),
                          unanswered: server.unanswered)
  end
end
