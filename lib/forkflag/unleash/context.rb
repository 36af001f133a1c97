# frozen_string_literal: true

require "time"

# The official SDK's API, backed by forkflag (lib/forkflag/unleash.rb).
module Unleash
  # An evaluation context, as the official SDK's: mutable fields, read by
  # forkflag when an evaluation is made.
  class Context
    # get_by_name and include?, as the official SDK reads a field.
    include Forkflag::FieldLookup

    # The standard fields.
    ATTRS = %i[app_name environment user_id session_id remote_address current_time].freeze

    # @!attribute [rw] app_name
    #   @return [Object] the application name (default: the configuration's)
    #
    # @!attribute [rw] environment
    #   @return [Object] the environment (default: the configuration's)
    #
    # @!attribute [rw] user_id
    #   @return [String, nil] the user id (set as text by {#initialize})
    #
    # @!attribute [rw] session_id
    #   @return [Object] the session id
    #
    # @!attribute [rw] remote_address
    #   @return [Object] the remote address
    #
    # @!attribute [rw] current_time
    #   @return [Time, String] the time the evaluation uses (default: now, as ISO-8601 text)
    #
    # @!attribute [rw] properties
    #   @return [Hash{Symbol => Object}] the custom fields

    # A reader per field (documented above, for YARD).
    attr_reader(*ATTRS, :properties)

    # Writers that also drop the evaluated form (see #to_forkflag).
    (ATTRS + [:properties]).each do |attr|
      define_method("#{attr}=") do |value|
        @to_forkflag = nil
        instance_variable_set("@#{attr}", value)
      end
    end

    # @param params [Hash] fields by name: camelCase or snake_case, Symbol
    #   or String keys; properties a Hash of custom fields
    # @raise [ArgumentError] when params is not a Hash
    def initialize(params = {})
      raise ArgumentError, "Unleash::Context must be initialized with a hash." unless params.is_a?(Hash)

      read_defaults(params)
      @user_id = value(params, "userId", "user_id")&.to_s
      @session_id = value(params, "sessionId", "session_id")
      @remote_address = value(params, "remoteAddress", "remote_address")
      @current_time = value(params, "currentTime", "current_time") || Time.now.utc.iso8601.to_s
      properties = value(params, "properties", "properties")
      @properties = properties.is_a?(Hash) ? properties.transform_keys(&:to_sym) : {}
    end

    # Every field, as the official SDK prints a context.
    #
    # @return [String] e.g. "<Context: user_id=42,session_id=,...>"
    def to_s
      "<Context: user_id=#{@user_id},session_id=#{@session_id},remote_address=#{@remote_address}," \
        "properties=#{@properties},app_name=#{@app_name},environment=#{@environment}," \
        "current_time=#{@current_time}>"
    end

    # The context as the Unleash API spells it, values as text.
    # @return [Hash{Symbol => Object}]
    def as_json(*_options)
      {
        appName: text(@app_name), environment: text(@environment), userId: text(@user_id),
        sessionId: text(@session_id), remoteAddress: text(@remote_address), currentTime: text(@current_time),
        properties: (@properties || {}).transform_values { |v| text(v) }
      }
    end

    # @param options [Array] passed to JSON's generator
    # @return [String] {#as_json} as JSON text
    def to_json(*options)
      as_json.to_json(*options)
    end

    # @return [Hash{Symbol => Object}] the fields as set
    def to_h
      ATTRS.to_h { |attr| [attr, instance_variable_get("@#{attr}")] }.merge(properties: @properties)
    end

    # What forkflag evaluates: a Hash in the API's spelling, made again
    # after a writer changed a field (the properties Hash is shared, so a
    # change made in it is seen too).
    # @api private
    def to_forkflag
      @to_forkflag ||= {
        appName: @app_name, environment: @environment, userId: @user_id, sessionId: @session_id,
        remoteAddress: @remote_address, currentTime: @current_time, properties: @properties
      }.freeze
    end

    private

    # app_name and environment: given, else the configuration's.
    def read_defaults(params)
      defaults = Unleash.configuration
      @app_name = value(params, "appName", "app_name") || defaults.app_name
      @environment = value(params, "environment", "environment") || defaults.environment || "default"
    end

    def value(params, camel, snake)
      [camel, camel.to_sym, snake, snake.to_sym].each do |key|
        found = params[key]
        return found unless found.nil?
      end
      nil
    end

    def text(value)
      case value
      when nil then nil
      when Time then value.utc.iso8601
      else value.to_s
      end
    end
  end
end
