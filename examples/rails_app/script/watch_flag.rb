# frozen_string_literal: true

# bin/rails runner script/watch_flag.rb FLAG [EXPECTED TIMEOUT]
#
# Asks the app's GET /flags for FLAG (one evaluation through Forkflag.client
# per request) and prints JSON lines: "start" with the first answer, the
# process, its parent and fork generation; with EXPECTED (true or false),
# asks again every 20 ms until the answer is EXPECTED or TIMEOUT seconds
# pass, printing "saw" when it is; then "done" with the number of
# evaluations made, how many answered true (yes) and false (no). forkflag
# sends this process's metrics when it exits.
require "json"

flag, expected, timeout = ARGV
abort("usage: bin/rails runner #{__FILE__} FLAG [true|false TIMEOUT]") unless flag
$stdout.sync = true

realtime = -> { Process.clock_gettime(Process::CLOCK_REALTIME) }
started_at = realtime.call
evaluations = 0
yes = 0
ask = lambda do
  status, _headers, body = Rails.application.call(Rack::MockRequest.env_for("/flags?names=#{CGI.escape(flag)}"))
  text = +""
  body.each { |part| text << part }
  body.close if body.respond_to?(:close)
  raise "GET /flags answered #{status}: #{text}" unless status == 200

  evaluations += 1
  answer = JSON.parse(text).fetch("flags").fetch(flag)
  yes += 1 if answer
  answer
end

inherited = Forkflag.client.stats.slice(:refreshes, :last_refresh_at, :ready)
# A one-shot script wants the server's current flags: wait (bounded) for the
# first refresh unless the flags inherited from the preloaded app are
# current already. (A server's workers answer at once instead.)
Forkflag.client.wait_until_ready(10)
known = Forkflag.client.flag_names.include?(flag)
middleware = defined?(Forkflag::Rack::Context) && Rails.application.middleware.include?(Forkflag::Rack::Context)
value = ask.call
puts JSON.generate(event: "start", pid: Process.pid, ppid: Process.ppid, at: started_at, value: value, known: known,
                   inherited_refreshes: inherited[:refreshes], inherited_ready: inherited[:ready],
                   inherited_refresh_at: inherited[:last_refresh_at]&.to_f,
                   fork_generation: ForkSafe.generation, spring_hook: Forkflag::Spring.installed?,
                   source: Forkflag.client.config.url ? "url" : "file", env: Rails.env,
                   middleware: middleware ? true : false)
if expected
  wanted = expected == "true"
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + Float(timeout || 10)
  while value != wanted && Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
    sleep 0.02
    value = ask.call
  end
  puts JSON.generate(event: "saw", value: value, at: realtime.call) if value == wanted
end
puts JSON.generate(event: "done", evaluations: evaluations, yes: yes, no: evaluations - yes)
