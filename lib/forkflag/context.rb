# frozen_string_literal: true

module Forkflag
  # An evaluation context converted once, to pass to many evaluations (for
  # example one per request). A plain Hash works too; a Context saves the
  # conversion on every call.
  #
  # @example
  #   ctx = Forkflag::Context.new(user_id: "42", remote_address: "10.0.0.1",
  #                               properties: { plan: "pro" })
  #   client.enabled?("new-checkout", ctx)
  class Context
    # Field name (as given) => canonical keyword.
    KEYS = {
      user_id: :user_id, userId: :user_id,
      session_id: :session_id, sessionId: :session_id,
      remote_address: :remote_address, remoteAddress: :remote_address,
      environment: :environment,
      app_name: :app_name, appName: :app_name,
      current_time: :current_time, currentTime: :current_time,
      properties: :properties
    }.freeze

    class << self
      # @param fields [Hash, nil] fields with Symbol or String keys, in
      #   snake_case or camelCase
      # @param keywords fields as keywords
      # @option keywords [String] :user_id
      # @option keywords [String] :session_id
      # @option keywords [String] :remote_address
      # @option keywords [String] :environment
      # @option keywords [String] :app_name
      # @option keywords [Time, String] :current_time a Time or an ISO-8601 String
      # @option keywords [Hash] :properties custom fields
      # @raise [ArgumentError] for an unknown field or an unreadable current_time
      def new(fields = nil, **keywords)
        unless fields.nil? || fields.is_a?(Hash)
          raise TypeError, "Forkflag::Context.new takes a Hash or keywords, got #{fields.inspect}"
        end

        _build(canonical(fields || {}).merge(canonical(keywords)))
      end

      private

      def canonical(hash)
        hash.each_with_object({}) do |(key, value), out|
          name = KEYS[key.is_a?(String) ? key.to_sym : key]
          unless name
            raise ArgumentError,
                  "unknown context field #{key.inspect}; use one of #{KEYS.keys.map(&:inspect).join(", ")} " \
                  "or put custom fields under properties:"
          end
          out[name] = value
        end
      end
    end

    # @return [Time, nil]
    def current_time
      ms = _current_time_ms
      ms && Time.at(ms / 1000, ms % 1000, :millisecond).utc
    end

    # @return [Hash] the fields that are set
    def to_h
      {
        user_id: user_id, session_id: session_id, remote_address: remote_address,
        environment: environment, app_name: app_name, current_time: current_time,
        properties: properties.empty? ? nil : properties
      }.compact
    end

    def ==(other)
      other.is_a?(Context) && other.to_h == to_h
    end
    alias eql? ==

    def hash
      to_h.hash
    end

    def inspect
      "#<Forkflag::Context #{to_h.map { |k, v| "#{k}=#{v.inspect}" }.join(" ")}>"
    end
  end
end
