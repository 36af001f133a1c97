# frozen_string_literal: true

module Forkflag
  # What a refresh changed, as {Client#on_change} listeners get it (and the
  # +change:+ of a +refresh.forkflag+ notification). Frozen.
  #
  class Change
    # The fields, in the order {#to_h} gives them.
    FIELDS = %i[added changed removed etag source flags duration at].freeze

    # @return [Array<String>] flags the previous configuration did not have, sorted
    attr_reader :added
    # @return [Array<String>] flags whose definition (strategies, constraints,
    #   variants, dependencies, on/off...) or a segment they use changed, sorted
    attr_reader :changed
    # @return [Array<String>] flags the new configuration does not have, sorted
    attr_reader :removed
    # @return [String, nil] the ETag the loaded configuration came with from
    #   the server (nil when no server response gave one)
    attr_reader :etag
    # @return [Symbol] where the configuration came from: :server, :file,
    #   :bootstrap, :backup or :update
    attr_reader :source
    # @return [Integer] flags now loaded
    attr_reader :flags
    # @return [Float] seconds the fetch and load took
    attr_reader :duration
    # @return [Time] when the configuration was applied
    attr_reader :at

    # @api private
    def initialize(added:, changed:, removed:, etag:, source:, flags:, duration:, at:)
      @added = added
      @changed = changed
      @removed = removed
      @etag = etag
      @source = source
      @flags = flags
      @duration = duration
      @at = at
      freeze
    end

    # @return [Hash{Symbol => Object}] the fields as a frozen Hash
    def to_h
      FIELDS.to_h { |field| [field, public_send(field)] }.freeze
    end

    # @param other [Object]
    # @return [Boolean] whether other is a Change with the same fields
    def ==(other)
      other.is_a?(Change) && other.to_h == to_h
    end

    # @return [String]
    def inspect
      "#<Forkflag::Change source=#{source} added=#{added} changed=#{changed} removed=#{removed}>"
    end
  end

  # A failure of a client's background work, as {Client#on_error}
  # listeners get it (and the payload of an +error.forkflag+
  # notification). An exception (never raised by forkflag) so that it can
  # go to an error tracker as it is. Frozen.
  class BackgroundError < Error
    # What kind of failure, one of:
    # :http_status (the server answered a status that is not a success),
    # :timeout, :connection (unreachable, refused, reset, TLS),
    # :invalid_payload (a payload that could not be read: the configuration
    # stays as it was), :file (the flags file cannot be read),
    # :refused (401/403: polling or metrics stopped),
    # :backup (the backup not loaded at start, or not written).
    # @return [Symbol]
    attr_reader :kind
    # @return [Integer, nil] the HTTP status, when the server answered one
    attr_reader :status
    # @return [Symbol] the work that failed: :server (refresh), :file,
    #   :metrics or :backup
    attr_reader :source
    # @return [Integer] consecutive failures of this work, this one included
    attr_reader :failures
    # @return [Time] when it failed
    attr_reader :at

    # @param message [String] what failed (never contains the token)
    # @param kind [Symbol]
    # @param status [Integer, nil]
    # @param source [Symbol]
    # @param failures [Integer]
    # @param at [Time]
    def initialize(message, kind:, status:, source:, failures:, at:)
      super(message)
      @kind = kind
      @status = status
      @source = source
      @failures = failures
      @at = at
      freeze
    end

    # @return [Hash{Symbol => Object}] kind, message, status, source,
    #   failures, at (a frozen Hash)
    def to_h
      { kind: kind, message: message, status: status, source: source, failures: failures, at: at }.freeze
    end
  end

  # Delivers the events of native background work to a client's listeners
  # and to ActiveSupport::Notifications (when loaded: never required by
  # forkflag). Runs on the log thread of each process (see {Logging}).
  # @api private
  module Events
    # Notification of every completed refresh.
    REFRESH = "refresh.forkflag"
    # Notification of each failure of background work.
    ERROR = "error.forkflag"
    # Notification of an evaluation of a flag with impression data.
    IMPRESSION = "impression.forkflag"
    # Notification of a sampled evaluation (instrument_evaluations).
    EVALUATION = "evaluation.forkflag"

    class << self
      # Whether ActiveSupport::Notifications is loaded (asked at each
      # delivery: it may be loaded after the client was made).
      # @return [Boolean]
      def active_support?
        !!defined?(ActiveSupport::Notifications.instrument)
      end

      # Whether something subscribes to a notification.
      # @param name [String]
      # @return [Boolean]
      def listening?(name)
        active_support? && ActiveSupport::Notifications.notifier.listening?(name)
      end

      # The value a listener gets for an event's data (see
      # Forkflag._wait_logs), and whether it is the configuration the
      # client was created with (listeners, registered later, do not get
      # that one; ActiveSupport does).
      # @return [Array(Change, Boolean), Array(BackgroundError, Boolean)]
      def build(data)
        case data.first
        when :refresh then [change(data.drop(1)), data.last]
        when :error then [error(data.drop(1)), data.last]
        end
      end

      # Instruments a notification when ActiveSupport is loaded; a
      # subscriber that raises is logged to the logger given.
      # @return [void]
      def instrument(name, payload, logger)
        return unless active_support?

        ActiveSupport::Notifications.instrument(name, payload)
      rescue StandardError => e
        logger.error("forkflag: a subscriber to #{name} raised #{e.class}: #{e.message}")
      end

      private

      def change(fields)
        source, etag, flags, duration, at_ms, added, changed, removed = fields
        Change.new(added: added.freeze, changed: changed.freeze, removed: removed.freeze, etag: etag&.freeze,
                   source: source, flags: flags, duration: duration, at: time(at_ms)).freeze
      end

      def error(fields)
        source, kind, message, status, failures, at_ms = fields
        BackgroundError.new(message, kind: kind, status: status, source: source, failures: failures,
                                     at: time(at_ms))
      end

      def time(millis)
        Time.at(millis / 1000, millis % 1000, :millisecond)
      end
    end
  end
end
