# frozen_string_literal: true

# Pitchfork with reforking (refork_after) serving examples/config.ru with
# `require "forkflag/pitchfork"` (examples/pitchfork.conf.rb), against the
# real Unleash server.
#
# Pitchfork is not packaged by Debian, so this runs only when
# FORKFLAG_PITCHFORK names a Pitchfork build: the root of a Pitchfork
# source tree whose C extension has been compiled into place, i.e. a
# directory with lib/pitchfork.rb, lib/pitchfork/pitchfork_http.so and
# exe/pitchfork (the server runs as
# `ruby -I $FORKFLAG_PITCHFORK/lib $FORKFLAG_PITCHFORK/exe/pitchfork ...`).
# Without it, the example is skipped with that reason.
PITCHFORK_BUILD = ENV.fetch("FORKFLAG_PITCHFORK", "")

RSpec.describe "Pitchfork with require \"forkflag/pitchfork\"", :integration do
  include_context "server processes", "pitchfork"

  before do
    skip("skipped: FORKFLAG_PITCHFORK not set (Pitchfork is not packaged by Debian)") if PITCHFORK_BUILD.empty?
    %w[lib/pitchfork.rb lib/pitchfork/pitchfork_http.so exe/pitchfork].each do |part|
      path = File.join(PITCHFORK_BUILD, part)
      unless File.exist?(path)
        raise "FORKFLAG_PITCHFORK=#{PITCHFORK_BUILD} is not a built Pitchfork: #{path} is missing"
      end
    end
  end

  def boot(flags, refork_after)
    lib = File.join(PITCHFORK_BUILD, "lib")
    command = [Gem.ruby, "-I", lib, File.join(PITCHFORK_BUILD, "exe", "pitchfork"),
               "-c", "examples/pitchfork.conf.rb", "examples/config.ru"]
    env = unleash_env(unleash, app_name: app_name, flags: flags, refresh_interval: refresh_interval)
    server = ServerProcess.new(command, name: "pitchfork", env: env.merge("REFORK_AFTER" => refork_after))
    serve(server)
    server
  end

  def generation_of(response)
    response.body["server_generation"]
  end

  it "has workers of generations 0, 1 and 2 each serving a flip within refresh_interval + 1 s" do
    flag = create_off_flag(unleash, "pitchfork")
    # refork_after is set, with limits these requests never reach: a
    # worker that gets most connections would otherwise be promoted before
    # every worker of its generation answered. The test promotes with USR2
    # (Pitchfork's manual refork) once a generation is checked.
    server = boot([flag], "1000000,1000000")
    responses = []
    delays = {}
    [[0, true], [1, false], [2, true]].each do |generation, value|
      # All three workers of this generation up (the previous ones gone)...
      seen = until_pids(server, 3, timeout: 60, where: ->(r) { generation_of(r) == generation })
      responses.concat(seen)
      pids = seen.select { |r| generation_of(r) == generation }.map(&:pid).uniq
      # ... then the flag flips on the server and each of them serves it.
      unleash.flip(flag, on: value)
      flipped_at = ServerProcess.now
      gen_delays, after = expect_flip_everywhere(server, pids, flag, value, flipped_at: flipped_at, bound: bound)
      expect(after.select { |r| pids.include?(r.pid) }.map { |r| generation_of(r) }.uniq).to eq([generation])
      responses.concat(after)
      delays[generation] = gen_delays.values.map { |d| d.round(2) }.sort
      server.signal("USR2") if generation < 2 # a worker becomes the next mold
    end
    warn("pitchfork: flip seen by each worker after (s, by generation) #{delays}")

    expect_clean_stop(server, signal: "QUIT", timeout: 20)
    # Workers end with exit! (no at_exit): before_worker_exit sent their
    # metrics, those replaced by reforks included.
    expect_server_metrics(unleash, app_name, evaluations_made(responses), unanswered: server.unanswered)
  end
end
