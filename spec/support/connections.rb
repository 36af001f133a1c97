# frozen_string_literal: true

# Sockets of this process connected to a TCP port (from /proc: the socket
# inodes of our descriptors, matched against the TCP tables).
module Connections
  module_function

  def to_port(port)
    inodes = Dir.children("/proc/self/fd").filter_map do |fd|
      File.readlink("/proc/self/fd/#{fd}")[/\Asocket:\[(\d+)\]\z/, 1]
    rescue SystemCallError
      nil
    end
    rows = %w[tcp tcp6].flat_map { |table| File.readlines("/proc/self/net/#{table}").drop(1) }
    rows.count do |row|
      fields = row.split
      fields[2].split(":").last.to_i(16) == port && inodes.include?(fields[9])
    end
  end
end
