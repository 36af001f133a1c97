# frozen_string_literal: true

# Unicorn 6 with forkflag (run from the repository root):
#
#   PORT=8080 WORKERS=3 unicorn -c examples/unicorn.conf.rb examples/config.ru
#
# PORT (default 8080), WORKERS (default 3). The flags' source: see
# config.ru. QUIT stops gracefully; TERM and INT quickly (workers still
# send their metrics).
require "forkflag/unicorn"

listen "#{ENV.fetch("HOST", "127.0.0.1")}:#{Integer(ENV.fetch("PORT", "8080"))}"
worker_processes Integer(ENV.fetch("WORKERS", "3"))
preload_app true
timeout 30

# Parks the master's client before each fork and starts each worker's own
# thread; hooks set in this file keep running.
Forkflag::Unicorn.configure(self)
