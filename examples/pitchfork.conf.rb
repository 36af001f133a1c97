# frozen_string_literal: true

# Pitchfork with forkflag (run from the repository root):
#
#   PORT=8080 WORKERS=4 REFORK_AFTER=50,100 pitchfork -c examples/pitchfork.conf.rb examples/config.ru
#
# PORT (default 8080), WORKERS (default 3), REFORK_AFTER: requests per
# worker after which a worker becomes the next mold, one number per
# generation (default none: no reforking). The flags' source: see
# config.ru.
require "forkflag/pitchfork" # wires before_fork, after_mold_fork, after_worker_fork, before_worker_exit

listen "#{ENV.fetch("HOST", "127.0.0.1")}:#{Integer(ENV.fetch("PORT", "8080"))}"
worker_processes Integer(ENV.fetch("WORKERS", "3"))
timeout 30

refork = ENV.fetch("REFORK_AFTER", "").split(",").map { |n| Integer(n) }
refork_after(refork) unless refork.empty?

after_worker_fork do |_server, worker|
  ForkflagExample.server_generation = worker.generation if defined?(ForkflagExample)
end
