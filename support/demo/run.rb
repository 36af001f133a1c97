# frozen_string_literal: true

# The demo driver (run by bin/demo after bin/setup). Ruby stdlib only.
#
# 1. builds the gem and installs it into tmp/demo/gems (the demo runs the
#    installed gem, not the checkout);
# 2. starts Puma in cluster mode, 4 workers, fork_worker, serving
#    examples/config.ru with examples/puma.rb; the flags come from a copy of
#    examples/flags.json that forkflag watches (or, with --unleash, from a
#    real Unleash server this script starts and stops);
# 3. requests until every worker has answered, prints the status page's
#    address (Forkflag::Web, mounted at /forkflag by examples/config.ru),
#    flips one flag, requests
#    until every worker serves the new value, and prints per worker: pid,
#    fork generation, flag values, how long after the flip it served the new
#    value, forkflag's native threads alive;
# 4. stops Puma (TERM, bounded) and exits 0 when every worker saw the flip.

require "fileutils"
require "json"
require "net/http"
require "optparse"
require "rbconfig"
require_relative "sources"
require_relative "processes"
require_relative "table"
require_relative "install"

# bin/demo: see the file's header.
module Demo
  ROOT = File.expand_path("../..", __dir__)
  WORK = File.join(ROOT, "tmp/demo")
  WORKERS = 4
  FLIPPED = "new-checkout"
  DEADLINE = 30 # seconds for each phase (boot, all workers, flip seen)

  module_function

  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  def step(message)
    puts "==> #{message}"
    $stdout.flush
  end

  def main(argv)
    options = { unleash: false }
    OptionParser.new do |o|
      o.banner = "usage: bin/demo [--unleash]"
      o.on("--unleash", "flags from a real Unleash server (started and stopped here)") { options[:unleash] = true }
    end.parse!(argv)
    FileUtils.mkdir_p(WORK)
    env = install_gem
    source = options[:unleash] ? UnleashSource.new : FileSource.new
    begin
      demo(env, source)
    ensure
      source.stop
    end
  end

  def demo(env, source)
    step("flags from #{source.describe}")
    puma = Puma.new(env.merge(source.env))
    step("Puma cluster on 127.0.0.1:#{puma.port}: #{WORKERS} workers, fork_worker " \
         "(worker 0 loads the app and forks the others); log: #{puma.log}")
    ok = false
    begin
      ok = exercise(puma, source)
    ensure
      seconds, clean = puma.stop
      step(format("Puma stopped in %<s>.2f s (%<how>s)", s: seconds, how: clean ? "clean exit" : "had to be killed"))
      ok &&= clean
    end
    exit(ok ? 0 : 1)
  end

  # Requests until every worker answered; returns the answers by pid.
  def meet_workers(puma, driver)
    workers = {}
    booted = driver.drive(timeout: DEADLINE) do |answer, _at|
      workers[answer["pid"]] = answer
      workers.size >= WORKERS
    end
    abort_with(puma, "not all #{WORKERS} workers answered within #{DEADLINE} s (#{workers.size} did)") unless booted
    announce_status_page(puma, driver)
    workers
  end

  def exercise(puma, source)
    driver = Driver.new(puma.port)
    workers = meet_workers(puma, driver)
    before = workers.values.first.dig("flags", FLIPPED)
    step("all #{WORKERS} workers answered; #{FLIPPED} is #{before} everywhere; flipping it to #{!before}")
    flipped_at = now
    source.flip(!before)
    seen = {}
    all_seen = driver.drive(timeout: DEADLINE) do |answer, at|
      pid = answer["pid"]
      if answer.dig("flags", FLIPPED) == !before && !seen.key?(pid)
        seen[pid] = at - flipped_at
        workers[pid] = answer
      end
      workers.keys.all? { |p| seen.key?(p) }
    end
    puts Table.new(workers, seen).render
    step(all_seen ? "every worker serves the new value" : "some workers did not see the flip within #{DEADLINE} s")
    all_seen
  end

  # Forkflag::Web, mounted at /forkflag by examples/config.ru.
  def announce_status_page(puma, driver)
    step("status page: http://127.0.0.1:#{puma.port}/forkflag/ (open it while the demo runs; each worker " \
         "answers for itself: #{driver.status_page || "no answer"})")
  end

  def abort_with(puma, message)
    warn("demo: #{message}\n--- last lines of #{puma.log} ---")
    warn(File.readlines(puma.log).last(30).join) if File.exist?(puma.log)
    raise SystemExit, 1
  end
end

Demo.main(ARGV) if $PROGRAM_NAME == __FILE__
