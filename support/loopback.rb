# frozen_string_literal: true

require "socket"

# Loopback helpers shared by the specs, the benchmarks and the demo (never
# part of the gem).
module Loopback
  module_function

  # A port on 127.0.0.1 that nobody listens on now.
  # @return [Integer]
  def free_port
    server = TCPServer.new("127.0.0.1", 0)
    server.addr[1]
  ensure
    server&.close
  end
end
