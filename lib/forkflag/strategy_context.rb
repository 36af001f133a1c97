# frozen_string_literal: true

module Forkflag
  # Reading a context's field by name as the official Unleash SDK does, for
  # a class with readers of the standard fields and a properties Hash with
  # Symbol keys ({StrategyContext}, and Unleash::Context of forkflag/unleash).
  module FieldLookup
    # The standard fields, by their snake_case names.
    STANDARD = %i[user_id session_id remote_address app_name environment current_time].freeze

    # The name as the official SDK reads it: snake_case, a Symbol
    # (+"userId"+ and +:user_id+ are +:user_id+).
    def self.key(name)
      name.to_s.gsub(/(?<=.)([A-Z])/, '_\1').downcase.to_sym
    end

    # A standard field in either spelling, else a property under the name
    # in snake_case or as given.
    # @raise [KeyError] for a property that is not there (as the official
    #   SDK's context does)
    def get_by_name(name)
      key = FieldLookup.key(name)
      return public_send(key) if STANDARD.include?(key)

      found = properties.fetch(key, nil)
      found.nil? ? properties.fetch(name.to_sym) : found
    end

    # Whether the field is there: a standard field name always is (as in
    # the official SDK), a property when it is set.
    def include?(name)
      key = FieldLookup.key(name)
      STANDARD.include?(key) || properties.key?(key) || properties.key?(name.to_sym)
    end
  end

  # The context a custom strategy sees (see {Strategies}): the evaluation's
  # context, whatever form it was given in (nil, a Hash in either spelling,
  # a {Context}), as one frozen value with the readers of the official
  # Unleash SDK's context. +app_name+ and +environment+ default to the
  # client's options; +current_time+ to the time of the evaluation.
  class StrategyContext
    include FieldLookup

    # The standard fields, in the order +to_s+ gives them.
    FIELDS = %i[user_id session_id remote_address properties app_name environment current_time].freeze

    # @return [String, nil]
    attr_reader :user_id
    # @return [Object, nil] as given (read through to_s when evaluated)
    attr_reader :session_id, :remote_address, :app_name, :environment
    # @return [Time, String] as given; the evaluation's time when none was
    attr_reader :current_time
    # @return [Hash{Symbol => Object}] the custom fields, frozen
    attr_reader :properties

    # The context for an evaluation's context argument.
    # @param argument [Hash, Context, nil] as given to enabled? or variant
    # @return [StrategyContext]
    def self.of(argument, app_name: nil, environment: nil)
      fields = case argument
               when nil then {}
               when Context then argument.to_h
               when Hash then standard_fields(argument)
               else
                 raise TypeError, "context must be a Hash, a Forkflag::Context or nil, " \
                                  "got #{Untrusted.describe(argument)}"
               end
      new(app_name: app_name, environment: environment, **fields.compact)
    end

    # Splits a Hash context into keywords of the standard fields, the
    # custom ones (other keys, and those under properties) in properties:.
    # @api private
    def self.standard_fields(hash)
      fields = {}
      custom = {}
      hash.each do |key, value|
        canonical = case key
                    when Symbol then Context::KEYS[key]
                    when String then Context::KEYS[key.to_sym]
                    end
        if canonical
          fields[canonical] = value
        else
          custom[key] = value
        end
      end
      given = fields[:properties]
      fields[:properties] = custom.merge(given.is_a?(Hash) ? given : {})
      fields
    end
    private_class_method :standard_fields

    # Takes the standard fields as keywords ({FIELDS}); nil values mean
    # absent (+app_name+ and +environment+ then take the client's).
    def initialize(user_id: nil, session_id: nil, remote_address: nil, properties: nil, app_name: nil,
                   environment: nil, current_time: nil)
      @user_id = user_id&.to_s&.freeze
      @session_id = session_id
      @remote_address = remote_address
      @app_name = app_name
      @environment = environment
      @current_time = current_time || Time.now.utc
      @properties = symbol_keys(properties)
      freeze
    end

    # A field by name, as {FieldLookup#get_by_name}, or nil.
    def [](name)
      get_by_name(name)
    rescue KeyError
      nil
    end

    # @return [Hash{Symbol => Object}]
    def to_h
      FIELDS.to_h { |field| [field, public_send(field)] }
    end

    # Every field, as the official SDK's context prints itself.
    #
    # @return [String] e.g. "<Context: user_id=\"42\",session_id=nil,...>"
    def to_s
      "<Context: #{FIELDS.map { |field| "#{field}=#{public_send(field).inspect}" }.join(",")}>"
    end
    alias inspect to_s

    # Contexts are equal when their fields are (also as Hash keys: {#eql?}).
    #
    # @param other [Object]
    # @return [Boolean]
    def ==(other)
      other.is_a?(StrategyContext) && other.to_h == to_h
    end
    alias eql? ==

    # @return [Integer] the hash of {#to_h}, consistent with {#==}
    def hash
      to_h.hash
    end

    private

    def symbol_keys(properties)
      return {}.freeze unless properties.is_a?(Hash)

      properties.transform_keys { |key| key.respond_to?(:to_sym) ? key.to_sym : key }.freeze
    end
  end
end
