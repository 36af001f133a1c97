# frozen_string_literal: true

module Forkflag
  # Carries messages from forkflag's native background threads to each
  # client's Logger. Native threads never touch the Ruby VM: they queue
  # messages, and one Ruby thread per process waits for them in native code
  # with the GVL released and hands each to the logger of the client that
  # wrote it. The same thread calls a client's custom_headers Proc when its
  # native thread is about to make a request (Client.reply_headers).
  module Logging
    # How long one native wait lasts before the thread looks around again.
    WAIT_SECONDS = 1.0

    @loggers = {}
    @open = {} # ids of the clients not closed (nor garbage collected)
    @lock = Mutex.new
    # Ids of clients garbage collected without close (see .finalizer).
    COLLECTED = Thread::Queue.new
    private_constant :COLLECTED
    @thread = nil
    @pid = nil

    class << self
      # Routes a client's messages to its logger.
      # @api private
      def register(client_id, logger)
        @lock.synchronize do
          @loggers[client_id] = logger
          @open[client_id] = true
        end
      end

      # Notes that a client was closed (or garbage collected without being
      # closed; calling this twice for one client is harmless). Its messages
      # still reach its logger (its thread may finish a request after close
      # gave up waiting); the log thread stops with the last open client, so
      # a process with no open client runs no forkflag thread.
      # @api private
      def closed(client_id)
        last = @lock.synchronize do
          @open.delete(COLLECTED.pop) until COLLECTED.empty?
          !@open.delete(client_id).nil? && @open.empty?
        end
        stop if last
      end

      # A finalizer for a client: a client garbage collected without close
      # counts as closed. It only queues the id (a finalizer may run while
      # this very thread holds the lock); the log thread notes it within
      # WAIT_SECONDS, and stops if that was the last open client.
      # @api private
      def finalizer(client_id)
        proc { COLLECTED << client_id }
      end

      # Stops this process's log thread (it starts again with the next client).
      # @api private
      def stop
        thread = @lock.synchronize do
          t = @thread if @pid == Process.pid
          @thread = nil
          t
        end
        return unless thread

        thread.kill
        # A finalizer may run on the log thread itself: it ends at once.
        thread.join(5) unless thread == Thread.current
      end

      # Starts this process's log thread unless it runs (first client, or
      # first use after a fork: threads do not survive fork).
      # @api private
      def ensure_running
        return @thread if @pid == Process.pid && @thread&.alive?

        @lock.synchronize do
          return @thread if @pid == Process.pid && @thread&.alive?

          @pid = Process.pid
          @thread = Thread.new { drain_forever }
          @thread.name = "forkflag-log"
          @thread.report_on_exception = false
          # Safe to fork beside (a child starts its own when it needs one);
          # preloading servers such as Puma skip threads marked so when they
          # warn about threads started during boot.
          @thread.thread_variable_set(:fork_safe, true)
        end
        @thread
      end

      # Delivers what is queued now (used at exit and by tests).
      # @api private
      def drain
        deliver(Forkflag.__send__(:_wait_logs, 0))
      end

      # @return [Thread, nil] this process's log thread
      def thread
        @thread if @pid == Process.pid
      end

      private

      def drain_forever
        loop do
          deliver(Forkflag.__send__(:_wait_logs, WAIT_SECONDS))
          Client.notice_active_support
          break if note_collected
        end
      end

      # Notes the clients collected without close; true when none is open
      # any more (this thread then ends: a new client starts another).
      def note_collected
        return false if COLLECTED.empty?

        @lock.synchronize do
          @open.delete(COLLECTED.pop) until COLLECTED.empty?
          return false unless @open.empty? && @thread == Thread.current

          @thread = nil
          true
        end
      end

      def deliver(records)
        records.each do |level, client_id, message|
          next Client.reply_headers(client_id) if level == :headers
          next Client.deliver_event(client_id, message) if level == :event

          logger = @lock.synchronize { @loggers[client_id] }
          (logger || fallback).public_send(level, message)
        rescue StandardError => e
          warn("forkflag: the logger raised #{e.class}: #{e.message} (message was: #{message})")
        end
      end

      def fallback
        @fallback ||= Logger.new($stderr, level: Logger::WARN, progname: "forkflag")
      end
    end
  end
end
