# frozen_string_literal: true

require "socket"
require "json"

# A small scriptable HTTP/1.1 server on 127.0.0.1 (a free port) for the
# faults a real Unleash server cannot be made to produce: error sequences,
# slow or hung answers, truncated or oversized bodies, broken JSON. Stdlib
# only; one Ruby thread accepts, one thread serves each connection
# (keep-alive: several requests per connection).
#
#   fault = FaultServer.new
#   fault.queue("GET", "/api/client/features", FaultServer.json(features, etag: '"v1"'), { status: 500 })
#   fault.answer("GET", "/api/client/features", { status: 503 })  # once the queue is used up
#   client = Forkflag::Client.new(url: fault.url, ...)
#   fault.requests("GET", "/api/client/features")  # => [FaultServer::Request, ...]
#   fault.stop(deadline: 5)
#
# An answer is a Hash:
#   status:   Integer (default 200)
#   headers:  Hash of String => String (Content-Length or Transfer-Encoding
#             is added as the framing says; a 304 or 204 gets only these)
#   body:     String (default "")
#   delay:    seconds to wait before answering
#   drip:     seconds to wait between pieces of the body (`piece:` bytes
#             each, 16 by default): a body that trickles in
#   truncate: send only this many bytes of the body (Content-Length still
#             says the full size), then close the connection
#   framing:  :length (default), :chunked, or :close (no Content-Length:
#             the body ends when the connection closes)
#   hang:     true: read the request, never answer; the connection stays
#             open until stop
#   close:    true: close the connection after answering
# Other keys are ignored (a test may label its answers).
#
# Each request to METHOD PATH (without the query) takes the first queued
# answer for it, else its standing answer, else a 404. Every request is
# recorded as a Request: verb, path, query, headers (names lower-cased),
# body, `at` (monotonic clock when its header section was read), the answer
# it got and the number of its connection.
class FaultServer
  Request = Struct.new(:verb, :path, :query, :headers, :body, :at, :answer, :connection, keyword_init: true) do
    # The status it was answered with, or :hang.
    def outcome
      answer[:hang] ? :hang : answer.fetch(:status, 200)
    end
  end

  REASONS = { 200 => "OK", 202 => "Accepted", 204 => "No Content", 304 => "Not Modified", 404 => "Not Found",
              429 => "Too Many Requests", 500 => "Internal Server Error", 503 => "Service Unavailable" }.freeze
  NOT_FOUND = { status: 404, body: "no answer scripted for this request" }.freeze
  MAX_LINE = 16 * 1024
  MAX_BODY = 16 * 1024 * 1024

  # Errors a connection thread expects when the peer or stop closes the socket.
  GONE = [IOError, EOFError, Errno::EPIPE, Errno::ECONNRESET, Errno::ECONNABORTED, Errno::EBADF,
          Errno::ENOTCONN].freeze

  # A JSON answer (200 unless given), with an ETag when given.
  def self.json(document, status: 200, etag: nil, **options)
    headers = { "Content-Type" => "application/json" }
    headers["ETag"] = etag if etag
    { status: status, headers: headers, body: document.is_a?(String) ? document : JSON.generate(document) }
      .merge(options)
  end

  attr_reader :port, :errors

  def initialize
    @listener = TCPServer.new("127.0.0.1", 0)
    @port = @listener.addr[1]
    @lock = Mutex.new
    @stopped = ConditionVariable.new
    @stopping = false
    @queues = Hash.new { |h, k| h[k] = [] }
    @standing = {}
    @requests = []
    @sockets = []
    @threads = []
    @errors = []
    @connections = 0
    @acceptor = Thread.new { accept_loop }
    @acceptor.name = "fault-server-accept"
    @acceptor.report_on_exception = false
  end

  # The base URL a client is given ("http://127.0.0.1:PORT/api").
  def url
    "http://127.0.0.1:#{port}/api"
  end

  # Answers the next requests to METHOD PATH with these, in order.
  def queue(method, path, *answers)
    @lock.synchronize { @queues[key(method, path)].concat(answers) }
    self
  end

  # The answer to METHOD PATH once its queue is empty.
  def answer(method, path, answer)
    @lock.synchronize { @standing[key(method, path)] = answer }
    self
  end

  # Recorded requests, optionally only those to METHOD PATH.
  def requests(method = nil, path = nil)
    all = @lock.synchronize { @requests.dup }
    return all unless method

    all.select { |r| r.verb == method.to_s.upcase && r.path == path }
  end

  # Connections accepted so far.
  def connections
    @lock.synchronize { @connections }
  end

  # Stops accepting, closes every connection (hung ones included) and joins
  # every thread by the deadline (seconds); threads still alive then are
  # killed. Returns the threads that had to be killed (none, normally).
  def stop(deadline: 5)
    until_time = Process.clock_gettime(Process::CLOCK_MONOTONIC) + deadline
    sockets = @lock.synchronize do
      @stopping = true
      @stopped.broadcast
      @sockets.dup
    end
    close_quietly(@listener)
    sockets.each { |s| close_quietly(s) }
    threads = [@acceptor] + @lock.synchronize { @threads.dup }
    threads.reject do |t|
      t.join([until_time - Process.clock_gettime(Process::CLOCK_MONOTONIC), 0].max)
    end.each(&:kill)
  end

  private

  def key(method, path)
    "#{method.to_s.upcase} #{path}"
  end

  def stopping?
    @lock.synchronize { @stopping }
  end

  # Waits `seconds` (nil: for ever), or until stop; true when stopping.
  def pause(seconds = nil)
    deadline = seconds && (Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds)
    @lock.synchronize do
      until @stopping
        left = deadline && (deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC))
        break if left && left <= 0

        @stopped.wait(@lock, left)
      end
      @stopping
    end
  end

  def close_quietly(io)
    io.close
  rescue IOError, SystemCallError
    nil
  end

  def accept_loop
    loop do
      socket = @listener.accept
      @lock.synchronize do
        if @stopping
          close_quietly(socket)
          break
        end
        @connections += 1
        number = @connections
        @sockets << socket
        thread = Thread.new { serve(socket, number) }
        thread.name = "fault-server-#{number}"
        thread.report_on_exception = false
        @threads << thread
      end
    end
  rescue *GONE
    nil
  end

  def serve(socket, number)
    loop do
      request = read_request(socket, number) or break
      respond(socket, request.answer) or break
    end
  rescue *GONE
    nil
  rescue StandardError => e
    @lock.synchronize { @errors << "#{e.class}: #{e.message}" }
  ensure
    close_quietly(socket)
  end

  def read_request(socket, number)
    line = socket.gets("\r\n", MAX_LINE) or return nil
    method, target, = line.split(" ", 3)
    headers = read_headers(socket)
    at = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    length = headers.fetch("content-length", "0").to_i
    raise ArgumentError, "request body of #{length} bytes" if length > MAX_BODY

    body = length.positive? ? socket.read(length) : ""
    path, query = target.split("?", 2)
    record(Request.new(verb: method, path: path, query: query, headers: headers, body: body, at: at,
                       connection: number))
  end

  def read_headers(socket)
    headers = {}
    100.times do
      line = socket.gets("\r\n", MAX_LINE) or raise EOFError, "connection closed in the header section"
      line = line.chomp("\r\n")
      return headers if line.empty?

      name, value = line.split(":", 2)
      name = name.downcase
      headers[name] = headers.key?(name) ? "#{headers[name]}, #{value.strip}" : value.strip
    end
    raise ArgumentError, "too many request header lines"
  end

  def record(request)
    @lock.synchronize do
      k = key(request.verb, request.path)
      request.answer = @queues[k].shift || @standing.fetch(k, NOT_FOUND)
      @requests << request
    end
    request
  end

  # Writes one answer; false when the connection must end.
  def respond(socket, answer)
    return false if answer[:delay] && pause(answer[:delay])
    return !pause if answer[:hang]

    body = answer.fetch(:body, "").b
    framing = answer.fetch(:framing, :length)
    socket.write(head(answer, body, framing))
    write_body(socket, answer, body, framing)
    !(answer[:truncate] || answer[:close] || framing == :close)
  end

  def head(answer, body, framing)
    status = answer.fetch(:status, 200)
    headers = answer.fetch(:headers, {}).merge(framing_headers(status, body, framing))
    headers["Connection"] = "close" if answer[:close] || framing == :close
    lines = ["HTTP/1.1 #{status} #{REASONS.fetch(status, "Status")}"]
    headers.each { |name, value| lines << "#{name}: #{value}" }
    "#{lines.join("\r\n")}\r\n\r\n".b
  end

  # Content-Length or Transfer-Encoding, unless the status has no body.
  def framing_headers(status, body, framing)
    return {} if [204, 304].include?(status) || status < 200

    case framing
    when :length then { "Content-Length" => body.bytesize.to_s }
    when :chunked then { "Transfer-Encoding" => "chunked" }
    else {}
    end
  end

  def write_body(socket, answer, body, framing)
    return if [204, 304].include?(answer.fetch(:status, 200))

    body = body.byteslice(0, answer[:truncate]) if answer[:truncate]
    if framing == :chunked
      body.bytes.each_slice(1000) { |chunk| socket.write("#{chunk.size.to_s(16)}\r\n#{chunk.pack("C*")}\r\n") }
      socket.write("0\r\n\r\n") unless answer[:truncate]
    elsif answer[:drip]
      drip(socket, body, answer[:drip], answer.fetch(:piece, 16))
    else
      socket.write(body)
    end
    socket.flush
  end

  def drip(socket, body, seconds, piece)
    (0...body.bytesize).step(piece).each_with_index do |offset, i|
      break if i.positive? && pause(seconds)

      socket.write(body.byteslice(offset, piece))
      socket.flush
    end
  end
end
