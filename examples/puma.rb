# frozen_string_literal: true

# Puma 5.6 in cluster mode with forkflag (run from the repository root):
#
#   PORT=9292 WORKERS=4 FORK_WORKER=1 puma -C examples/puma.rb examples/config.ru
#
# PORT (default 9292), WORKERS (default 3), SHUTDOWN_TIMEOUT (seconds,
# default 30), FORK_WORKER: unset for plain cluster mode; a number N for
# fork_worker, worker 0 reforking the others after N requests (0: only when
# the master gets SIGURG). The flags' source: see config.ru.
#
# Plain cluster mode preloads the app in the master (preload_app!), so the
# client is created once there. Under fork_worker, Puma loads the app in
# worker 0, which forks the other workers (and reforks them: Puma 5.6 can
# refork only without preload_app!), so the client is created once in
# worker 0.

port Integer(ENV.fetch("PORT", "9292")), ENV.fetch("HOST", "127.0.0.1")
workers Integer(ENV.fetch("WORKERS", "3"))
threads 1, Integer(ENV.fetch("THREADS", "4"))
worker_shutdown_timeout Integer(ENV.fetch("SHUTDOWN_TIMEOUT", "30"))

if ENV.fetch("FORK_WORKER", "").empty?
  preload_app!
else
  fork_worker Integer(ENV.fetch("FORK_WORKER"))
end

# Park the master's client before forking, start each worker's thread at
# boot, send each worker's metrics when it stops (see Forkflag::Puma).
plugin :forkflag
